class CredentialsUnreadable(Exception):
    """A sealed secret could not be opened: wrong connection, tampered ciphertext or key unavailable."""


class CredentialsUnavailable(Exception):
    """The key service could not be reached or refused to work: a server-side failure."""
