"""One HTTP request: its status, headers (Retry-After) and body. Raises OSError when nothing
answered (refused, reset, timed out), so the sender keeps the request and backs off."""

import http.client
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from .wire import from_json


@dataclass(frozen=True)
class Answer:
    status: int
    headers: Mapping[str, str]
    """Names in lower case."""
    body: bytes = b""

    def json(self) -> Any:
        return from_json(self.body)

    def retry_after(self) -> float | None:
        """The seconds of `Retry-After`, None when absent or not a number of seconds."""
        try:
            return max(0.0, float(self.headers["retry-after"]))
        except (KeyError, ValueError):
            return None


class Transport(Protocol):
    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Answer: ...


class UrllibTransport:
    def __init__(self, timeout_seconds: float = 15) -> None:
        self.timeout_seconds = timeout_seconds

    def send(self, method: str, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        request = urllib.request.Request(url, data=body, method=method, headers=headers)
        try:
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                    return Answer(response.status, lowered(response.headers.items()), response.read())
            except urllib.error.HTTPError as error:  # a status outside 2xx: an answer all the same
                with error:
                    return Answer(error.code, lowered(error.headers.items()), error.read())
        except http.client.HTTPException as error:  # a broken answer is no answer
            raise OSError(f"broken answer from {url}: {error!r}") from error


def lowered(headers: list[tuple[str, str]]) -> dict[str, str]:
    return {name.lower(): value for name, value in headers}
