"""The command API as granian serves it (RSGI): every request body is read on the event loop
within a deadline, and only a body that has fully arrived goes on to the ingestion endpoints (or
to Django, for any other path). Never hand application code a stream that can block.

Why: under granian's WSGI interface the app is called as soon as the headers are in, and
`wsgi.input.read()` waits on the socket inside the worker's one blocking thread with no timeout:
two connections that declared `Content-Length: 1000` and sent 13 bytes held both workers of
`make run` for as long as they stayed open, and every other capture timed out
(docs/operations.md, "Slow clients"). Here a stalled body costs a connection slot (granian's
`--backpressure`) until the deadline; then the client gets a 408 and its connection is closed.
"""

import asyncio
import io
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import msgspec

from command_side import endpoints, fast_path
from contracts import limits
from contracts.errors import ErrorCode, error_body
from observability import logs

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
Headers = list[tuple[str, str]]


class Scope(Protocol):
    """What this module reads of granian's RSGI HTTP scope (granian.rsgi.Scope)."""

    proto: str
    http_version: str
    server: str
    client: str
    scheme: str
    method: str
    path: str
    query_string: str

    @property
    def headers(self) -> Any: ...


class HTTPProtocol(Protocol):
    """What this module uses of granian's RSGI HTTP protocol object."""

    def __call__(self) -> Any: ...

    def __aiter__(self) -> Any: ...

    def response_bytes(self, status: int, headers: Headers, body: bytes) -> None: ...


BODILESS = frozenset({"GET", "HEAD"})
"""Methods whose requests carry no body unless they declare a Content-Length."""


async def receive_body(protocol: HTTPProtocol, length: int | None) -> bytes:
    """The request body, at most one byte past the size limit: the endpoints refuse anything
    longer, and must never make us buffer more. A declared length over the limit is not read
    at all (the endpoint answers 413 from the header alone)."""
    if length is not None:
        if length == 0 or length > limits.MAX_BODY_BYTES:
            return b""
        return bytes(await protocol())  # hyper stops at the declared length
    # Chunked: until the end, or one byte past the limit.
    received = bytearray()
    async for chunk in protocol:
        received += chunk
        if len(received) > limits.MAX_BODY_BYTES:
            break
    return bytes(received[: limits.MAX_BODY_BYTES + 1])


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ of a request whose whole body has arrived (for Django)."""
    server_host, _, server_port = scope.server.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        # PEP 3333 wants the path's bytes as latin-1 text; RSGI gives it decoded from UTF-8.
        "PATH_INFO": scope.path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": False,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name in scope.headers.keys():  # RSGI headers: mapping-like, not a dict
        if name == "content-type":
            environ["CONTENT_TYPE"] = scope.headers[name]
        elif name == "content-length":
            environ["CONTENT_LENGTH"] = scope.headers[name]
        else:
            separator = ";" if name == "cookie" else ","
            environ["HTTP_" + name.upper().replace("-", "_")] = separator.join(scope.headers.get_all(name))
    return environ


def call_wsgi(app: WSGIApp, environ: dict[str, Any]) -> tuple[int, Headers, bytes]:
    """Run a WSGI app to the end of its answer."""
    answer: dict[str, Any] = {}

    def start_response(status: str, headers: Headers, exc_info: Any = None) -> Callable[[bytes], None]:
        answer["status"], answer["headers"] = int(status.split(" ", 1)[0]), headers
        return lambda data: None  # PEP 3333's write(); Django never uses it

    chunks = app(environ, start_response)
    try:
        body = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()  # Django's request_finished: closes database connections past their age
    return answer["status"], answer["headers"], body


@contextmanager
def as_sync_code() -> Iterator[None]:
    """Run the block as code of a thread without an event loop, which it is: it never awaits.

    TRICKY: Django decides by `asyncio.get_running_loop()` both to refuse database queries
    ("async context") and, through asgiref's Local, to give each asyncio task a database
    connection of its own, which would open a new connection for every request that looks a key
    up and leave it to the garbage collector. Hidden from it, the loop's thread keeps one
    thread-local connection, as the blocking thread of granian's WSGI interface did.
    """
    loop = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(loop)


class Edge:
    """The RSGI application: ingestion through the fast path's endpoints, anything else through
    `django_app` (WSGI), each with its whole body, or a 408 after `body_timeout_seconds`.

    The endpoints and Django run on the event loop's thread, synchronously, one request at a
    time and never across an `await` (`as_sync_code`): what the worker's single blocking thread
    did under WSGI, without a hand-off between threads per request (that doubled the server's
    CPU per capture, docs/performance.md).
    """

    def __init__(self, django_app: WSGIApp, *, body_timeout_seconds: float) -> None:
        self.django_app = django_app
        self.body_timeout_seconds = body_timeout_seconds
        self.timed_out = msgspec.json.encode(
            error_body(ErrorCode.BODY_TIMEOUT, f"request body not received within {body_timeout_seconds:g} s")
        )

    async def __call__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        if scope.proto != "http":
            return  # no websockets here (granian runs with --no-ws)
        found = fast_path.route(scope.path)
        if found is not None and scope.method not in found.methods:
            # Refused before the body is read, as the WSGI fast path did.
            request_id = logs.request_id_from(scope.headers.get("x-request-id"))
            refusal = fast_path.identified(endpoints.method_not_allowed(found.methods), request_id)
            protocol.response_bytes(refusal.status, answer_headers(refusal), refusal.body)
            return
        length = endpoints.declared_length(scope.headers.get("content-length") or "")
        if length is None and scope.method in BODILESS:
            # A GET declares no body (flag evaluation, a few thousand a second): no read, and no
            # deadline task to arm for one; whatever a client might stream after it is ignored.
            self.answer(scope, protocol, found, length, b"")
            return
        try:
            body = await asyncio.wait_for(receive_body(protocol, length), self.body_timeout_seconds)
        except TimeoutError:
            # Cancelling the read drops granian's body stream: hyper closes the connection
            # after this answer rather than wait for the rest of the body.
            closing = [("content-type", "application/json"), ("connection", "close")]
            protocol.response_bytes(408, closing, self.timed_out)
            return
        except RuntimeError:  # granian's RSGIProtocolClosed: the client left mid-body
            return
        self.answer(scope, protocol, found, length, body)

    def answer(
        self, scope: Scope, protocol: HTTPProtocol, found: fast_path.Route | None, length: int | None, body: bytes
    ) -> None:
        if found is None:
            environ = wsgi_environ(scope, body)
            with as_sync_code():
                status, headers, content = call_wsgi(self.django_app, environ)
            protocol.response_bytes(status, headers, content)
            return
        request = endpoints.IngestRequest(
            authorization=scope.headers.get("authorization", ""),
            content_encoding=scope.headers.get("content-encoding", ""),
            content_length=length,
            read_body=lambda: body,
            method=scope.method,
            query=scope.query_string,
            content_type=scope.headers.get("content-type", ""),
            origin=scope.headers.get("origin", ""),
            cors_request_headers=scope.headers.get("access-control-request-headers", ""),
            if_none_match=scope.headers.get("if-none-match", ""),
            request_id=scope.headers.get("x-request-id", ""),
        )
        with as_sync_code():
            result = fast_path.answer(found, request)
        protocol.response_bytes(result.status, answer_headers(result), result.body)


def answer_headers(result: endpoints.IngestResponse) -> Headers:
    return [("content-type", result.content_type), *result.headers.items()]
