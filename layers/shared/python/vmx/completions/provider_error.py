"""A provider call's failure, in a module of its own: the error classification of every API function reads it,
and must not load the provider calls (urllib3, the OpenAI models) with it."""


class ProviderError(Exception):
    """The provider refused or failed, or could not be reached. `status` is what our endpoint should answer;
    `reached` is False only when the request certainly never got to the provider (no connection was made), so
    that its capacity can be given back.

    Never holds a secret: every text taken from a provider passes through `Redactor.clean` first.
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        retry_after: str | None = None,
        rate_limit_headers: dict[str, str] | None = None,
        reached: bool = True,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.rate_limit_headers = rate_limit_headers or {}
        self.reached = reached
