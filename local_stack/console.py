"""The web console's files at the root of the local stack, with the security headers CloudFront adds
in AWS, and the config.json the CDK deployment writes there."""

import json
import posixpath
from pathlib import Path
from urllib.parse import unquote, urlsplit

from infra.system import CONSOLE_CONFIG_FILE, console_content_security_policy
from local_stack.gateway import HttpRequest, HttpResponse, error_response

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}


def security_headers(api_origin: str) -> tuple[tuple[str, str], ...]:
    return (
        ("Content-Security-Policy", console_content_security_policy(api_origin)),
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "no-referrer"),
        # The file names carry no content hash: browsers must revalidate, as they do behind CloudFront.
        ("Cache-Control", "no-cache"),
    )


class ConsoleFiles:
    def __init__(self, root: Path, api_url: str = "") -> None:
        """`api_url` empty: the API shares the console's origin, as on the local stack, and is called with
        relative URLs. Otherwise the console calls it cross-origin, as in AWS."""
        self._root = root.resolve()
        self._config = json.dumps({"apiUrl": api_url}).encode()
        parts = urlsplit(api_url)
        self._headers = security_headers(f"{parts.scheme}://{parts.netloc}" if api_url else "")

    def handle(self, request: HttpRequest) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return error_response(
                405,
                "method_not_allowed",
                f"{request.method} is not served here",
                ("Allow", "GET, HEAD"),
                *self._headers,
            )
        relative = posixpath.normpath(unquote(request.path)).lstrip("/") or "index.html"
        if relative == CONSOLE_CONFIG_FILE:
            return self._file(".json", self._config)
        not_found = error_response(404, "not_found", f"no such file: {request.path}", *self._headers)
        if "\x00" in relative:  # no file has one, and the file system would refuse it with an error
            return not_found
        path = (self._root / relative).resolve()
        if not path.is_relative_to(self._root) or not path.is_file() or path.suffix not in CONTENT_TYPES:
            return not_found
        return self._file(path.suffix, path.read_bytes())

    def _file(self, suffix: str, body: bytes) -> HttpResponse:
        return HttpResponse(200, [("Content-Type", CONTENT_TYPES[suffix]), *self._headers], body)
