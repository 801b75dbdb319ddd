"""How the emulator is served: werkzeug's threaded HTTPS server, tuned to behave like the service's front end.

Kept-alive HTTP/1.1 connections (one TLS handshake per client, as with Exchange Online), no per-request log line,
a ``Date`` header the fault ``clock_skew`` can replace, a path matched case-insensitively under ``/adminapi``, and
dropped connections on demand (faults ``drop_next``, ``drop_after_next``). The Flask app and its routes know
nothing of this.
"""

from __future__ import annotations

import io
import selectors
import socket
import ssl
import weakref
from collections.abc import Callable
from typing import Any

import werkzeug.serving
from flask import Flask
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

__all__ = ["serve"]


class _DropConnection(ConnectionResetError):
    """Raised through werkzeug so it closes the socket without answering (werkzeug ignores ConnectionError)."""



# Sockets our handler is serving: the drain below is skipped for these only.
_OWN_CONNECTIONS: weakref.WeakSet[Any] = weakref.WeakSet()


class _OwnDrainSelector(selectors.DefaultSelector):
    """werkzeug's post-response drain, skipped on the emulator's own connections.

    Why: after every response werkzeug (3.x, ``run_wsgi``) waits up to 10 ms on the socket to drain request bytes
    the application did not read, then reads whatever is there. On a kept-alive connection that would be the
    client's next request, and :func:`_read_whole_body` has already consumed this one's body, so the drain never
    finds anything of this request: it is skipped (it also cost ~13 ms per HTTPS request). Any other werkzeug
    server in the process (a socket not in :data:`_OWN_CONNECTIONS`) keeps werkzeug's own drain.
    """

    def select(self, timeout: float | None = None) -> Any:
        registered = [key.fileobj for key in self.get_map().values()]
        if registered and all(obj in _OWN_CONNECTIONS for obj in registered):
            return []
        return super().select(timeout)


class _WerkzeugSelectors:
    """Stands in for the ``selectors`` module inside ``werkzeug.serving`` (the two names its drain uses)."""

    EVENT_READ = selectors.EVENT_READ
    DefaultSelector = _OwnDrainSelector


def _read_whole_body(app: Any) -> Callable[..., Any]:
    """Read each request's body before the app runs, so the connection is positioned at the next request
    whatever the view reads (the condition for keeping connections alive)."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        stream = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH")
        if stream is not None and (length or environ.get("wsgi.input_terminated")):
            body = stream.read(int(length)) if length else stream.read()
            environ["wsgi.input"] = io.BytesIO(body)
        return app(environ, start_response)

    return middleware


def _install_drain_selector() -> None:
    """Let werkzeug's drain skip our connections.

    This is the one process-wide change, and why it must be: werkzeug reads ``selectors`` from its module globals
    inside a closure of ``run_wsgi`` (no per-server or per-handler hook short of copying that 150-line method). Its
    effect is scoped all the same: :class:`_OwnDrainSelector` behaves like the real selector for every socket that
    is not one of our handler's, so another werkzeug server in the same process is unchanged.
    """
    if getattr(werkzeug.serving, "selectors", None) is selectors:
        setattr(werkzeug.serving, "selectors", _WerkzeugSelectors)


class _QuietHandler(WSGIRequestHandler):
    """werkzeug's handler, without a log line per request (the emulator keeps its own request log), and with
    HTTP/1.1 keep-alive.

    werkzeug 3 sends ``Connection: close`` on every answer because it cannot drain an unread body; with the
    body always read (:func:`_read_whole_body`) the connection can stay open, as Exchange Online's does: one
    TLS handshake per client instead of one per request, which otherwise dominates apply benchmarks. A client
    that asks for ``Connection: close`` still gets it.
    """

    verbose = False
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: Nagle + delayed ACK add 40 ms each
    timeout = 120  # an idle kept-alive connection is closed after this many seconds
    open_connections: set[Any]  # set per server class (see serve()): closed on stop()

    def setup(self) -> None:
        super().setup()
        self.open_connections.add(self.connection)
        _OWN_CONNECTIONS.add(self.connection)

    def finish(self) -> None:
        self.open_connections.discard(self.connection)
        _OWN_CONNECTIONS.discard(self.connection)
        super().finish()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.verbose:
            super().log_request(code, size)

    def log_error(self, format: str, *args: Any) -> None:  # noqa: A002 - base class signature
        if self.verbose:
            super().log_error(format, *args)

    # A Date header set by the application (fault clock_skew) replaces the server's own instead of doubling it.

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        self._date_pending = True

    def send_header(self, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and not self.close_connection:
            return  # werkzeug's unconditional close (see the class docstring)
        if keyword.lower() == "date":
            self._date_pending = False
        super().send_header(keyword, value)

    def end_headers(self) -> None:
        if getattr(self, "_date_pending", False):
            self.send_header("Date", self.date_time_string())
        super().end_headers()


def _drop_middleware(app: Any) -> Callable[..., Any]:
    """Turn a view's "drop this connection" verdict into a closed socket and no HTTP answer."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        result = app(environ, start_response)
        if environ.get("emulator.drop"):
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            raise _DropConnection("fault injection: connection dropped")
        return result

    return middleware


def _lower_adminapi_path(app: Any) -> Callable[..., Any]:
    """The service's path is case-insensitive (``AdminApi`` is used by some clients [S3]); Flask's routing is not."""

    def middleware(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        path = environ.get("PATH_INFO", "")
        parts = path.split("/")
        if len(parts) >= 5 and parts[1].lower() == "adminapi":
            parts[1] = "adminapi"
            parts[2] = parts[2].lower()
            parts[4:] = [p.lower() for p in parts[4:]]
            environ["PATH_INFO"] = "/".join(parts)
        return app(environ, start_response)

    return middleware


def serve(
    app: Flask, host: str, port: int, ssl_context: ssl.SSLContext, *, verbose: bool
) -> tuple[BaseWSGIServer, set[Any]]:
    """A threaded HTTPS server for ``app`` (not yet serving) and the set of its open connections (close them
    after ``server_close()``: kept-alive connections must not outlive the server)."""
    app.wsgi_app = _read_whole_body(  # type: ignore[method-assign]
        _lower_adminapi_path(_drop_middleware(app.wsgi_app)))
    _install_drain_selector()
    connections: set[Any] = set()
    handler = type("Handler", (_QuietHandler,), {"verbose": verbose, "open_connections": connections})
    server = make_server(host, port, app, threaded=True, request_handler=handler, ssl_context=ssl_context)
    server.daemon_threads = True  # type: ignore[attr-defined]
    return server, connections
