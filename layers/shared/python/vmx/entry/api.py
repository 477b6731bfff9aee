"""The entry of a function behind API routes."""

import os
from collections.abc import Callable, Mapping
from typing import Any, Generic, TypeVar

from aws_lambda_powertools.utilities.typing import LambdaContext

from vmx.entry import D, Dependencies, Handler, Observed
from vmx.http.app import new_app, resolve
from vmx.settings import ConsoleOriginSettings

S = TypeVar("S", bound=ConsoleOriginSettings)


class ApiFunction(Generic[S, D]):
    """A function behind API routes: its resolver, its settings, read from the
    environment once, and its dependencies, built from them."""

    def __init__(
        self,
        settings: Callable[[Mapping[str, str]], S],
        build: Callable[[S, Observed], D],
    ) -> None:
        self.observed = Observed()
        self.app = new_app(self.observed.logger)
        self.settings = Dependencies(lambda: settings(os.environ))
        self.dependencies = Dependencies(lambda: build(self.settings.get(), self.observed))

    def rebuild(self) -> None:
        """Settings and dependencies are read and built again when next needed (a test changed the environment)."""
        self.settings.use(None)
        self.dependencies.use(None)

    def handler(self) -> Handler:
        def serve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
            return resolve(self.app, event, context, allowed_origin=self.settings.get().console_origin)

        return self.observed.entry(serve)
