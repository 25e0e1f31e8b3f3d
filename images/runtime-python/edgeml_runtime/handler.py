"""HTTP: a ThreadingHTTPServer that knows its connections (so idle keep-alive ones can be closed
when draining) and the request handler for /score, /health and /swagger.json."""
import json
import socket
import socketserver
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import log
from .custom_metrics import metrics
from .decode import DecodeError
from .service import dump_json

ROUTES = "POST /score, GET /health, GET /swagger.json, GET /metrics"
# Past the limit the rest of a body is read and dropped (so the client gets to read the 413 rather
# than a reset), but only up to this much; beyond it the connection is closed at once.
DISCARD_CAP = 16 * 1024 * 1024
READ_CHUNK = 64 * 1024


class TooLarge(Exception):
    def __init__(self, close):
        super().__init__("too large")
        self.close = close


class BadRequest(Exception):
    pass


class ScoringServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, service):
        self.service = service
        self.draining = False
        self.in_flight = 0
        self.connections = set()
        self.cond = threading.Condition()
        super().__init__(address, Handler)

    def server_bind(self):
        # HTTPServer.server_bind also resolves socket.getfqdn(host): a DNS lookup that can stall
        # startup for seconds on an offline device. Nothing here needs the name.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def track(self, handler):
        with self.cond:
            self.connections.add(handler)

    def untrack(self, handler):
        with self.cond:
            self.connections.discard(handler)
            self.cond.notify_all()

    def begin(self, handler):
        with self.cond:
            handler.busy = True
            self.in_flight += 1

    def end(self, handler):
        with self.cond:
            handler.busy = False
            self.in_flight -= 1
            self.cond.notify_all()

    def close_idle(self):
        """Ends connections waiting for their next request (the caller holds `cond`)."""
        for handler in list(self.connections):
            if not handler.busy:
                try:
                    handler.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


def server_class(host):
    if ":" in host:
        return type("ScoringServer6", (ScoringServer,), {"address_family": socket.AF_INET6})
    return ScoringServer


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "edgeml-runtime-python"
    sys_version = ""
    timeout = 120  # an idle keep-alive connection or a stalled upload is dropped after this

    def setup(self):
        super().setup()
        self.busy = False
        self.server.track(self)

    def finish(self):
        try:
            super().finish()
        finally:
            self.server.untrack(self)

    def log_message(self, format, *args):  # noqa: A002 - no access log; errors are logged as JSON
        pass

    def version_string(self):
        return self.server_version

    def do_GET(self):
        self._dispatch()

    def do_POST(self):
        self._dispatch()

    do_PUT = do_PATCH = do_DELETE = do_POST

    # -- plumbing

    def _dispatch(self):
        self.server.begin(self)
        self._responded = False
        try:
            self._route()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as err:  # noqa: BLE001 - a bug here must not kill the connection thread silently
            if self._responded:
                log.error("request failed", method=self.command, path=self._path(), error=str(err), stack=traceback.format_exc())
                self.close_connection = True
            else:
                self._error(500, "RUNTIME_E_RUN_FAILED", f"{type(err).__name__}: {err}", {"Connection": "close"}, traceback.format_exc())
        finally:
            self.server.end(self)

    def _path(self):
        return self.path.split("?", 1)[0]

    def _send(self, status, body, headers=None):
        data = body if isinstance(body, bytes) else dump_json(body).encode("utf-8")
        self._responded = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        if self.server.draining and "Connection" not in (headers or {}):
            self.send_header("Connection", "close")  # also sets close_connection
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _error(self, status, code, message, headers=None, stack=None):
        self._send(status, {"error": {"code": code, "message": message}}, headers)
        if status >= 500:
            level = log.warn if status == 503 else log.error
            level(f"{self.command} {self._path()} answered {status}", status=status, code=code, error=message, stack=stack)

    def _not_ready(self):
        service = self.server.service
        if service.phase == "failed":
            self._error(503, "RUNTIME_E_NOT_READY", f"not serving: {service.failure}")
        else:
            self._error(503, "RUNTIME_E_NOT_READY", "init() has not finished yet; retry shortly", {"Retry-After": "1"})

    def _discard(self, n):
        while n > 0:
            chunk = self.rfile.read(min(n, READ_CHUNK))
            if not chunk:
                raise BadRequest("the client closed the connection before sending the whole body")
            n -= len(chunk)

    def _read_body(self, limit):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked(limit)
        raw = self.headers.get("Content-Length")
        if raw is None:
            return b""
        try:
            length = int(raw)
            if length < 0:
                raise ValueError
        except ValueError:
            raise BadRequest(f"invalid Content-Length {raw!r}") from None
        if length > limit:
            if length > limit + DISCARD_CAP:
                raise TooLarge(close=True)
            self._discard(length)
            raise TooLarge(close=False)
        data = self.rfile.read(length)
        if len(data) < length:
            raise BadRequest("the client closed the connection before sending the whole body")
        return data

    def _read_chunked(self, limit):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(65537)
            digits = line.split(b";", 1)[0].strip()
            # Hex digits only: int() would also take "-1" or "+0x10", and a negative size would
            # make the reads below unbounded.
            if not digits or len(digits) > 16 or not all(c in b"0123456789abcdefABCDEF" for c in digits):
                raise BadRequest("malformed chunked body")
            size = int(digits, 16)
            if size == 0:
                while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            total += size
            if total > limit + DISCARD_CAP:
                raise TooLarge(close=True)
            if total > limit:
                chunks = []
                self._discard(size)
            else:
                chunk = self.rfile.read(size)
                if len(chunk) < size:
                    raise BadRequest("the client closed the connection before sending the whole body")
                chunks.append(chunk)
            if self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise BadRequest("malformed chunked body")
        if total > limit:
            raise TooLarge(close=False)
        return b"".join(chunks)

    # -- routes

    def _route(self):
        path = self._path()
        if self.command == "POST" and path == "/score":
            return self._score()
        if self.command == "GET" and path == "/health":
            return self._health()
        if self.command == "GET" and path == "/metrics":
            return self._send(200, metrics.snapshot())
        if self.command == "GET" and path == "/swagger.json":
            if self.server.service.openapi is None:
                return self._not_ready()
            return self._send(200, self.server.service.openapi)
        self._error(404, "RUNTIME_E_NOT_FOUND", f"no route {self.command} {path} (routes: {ROUTES})")

    def _health(self):
        service = self.server.service
        if service.phase == "ready":
            self._send(200, {"status": "ok"})
        elif service.phase == "failed":
            self._send(503, {"status": "failed", "error": service.failure})
        else:
            self._send(503, {"status": "starting"}, {"Retry-After": "1"})

    def _score(self):
        service = self.server.service
        limit = service.config.max_body_bytes
        try:
            body = self._read_body(limit)
        except TooLarge as err:
            message = f"request body is larger than {limit} bytes (EDGEML_MAX_BODY_BYTES)"
            return self._error(413, "RUNTIME_E_TOO_LARGE", message, {"Connection": "close"} if err.close else None)
        except BadRequest as err:
            self.close_connection = True
            return self._error(400, "RUNTIME_E_INVALID_JSON", str(err), {"Connection": "close"})
        if service.phase != "ready":
            return self._not_ready()
        try:
            value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
        except (UnicodeDecodeError, ValueError) as err:
            return self._error(400, "RUNTIME_E_INVALID_JSON", f"request body is not valid JSON: {err}")
        except RecursionError:
            return self._error(400, "RUNTIME_E_INVALID_JSON", "request body is not valid JSON: nested too deeply")
        problem = service.check_input(value)
        if problem is not None:
            return self._error(400, "RUNTIME_E_INVALID_INPUT", problem)
        if service.decode is not None:
            try:
                value = service.decode(value)
            except DecodeError as err:
                return self._error(400, "RUNTIME_E_INVALID_INPUT", str(err))
        try:
            result = service.app.run(value)
        except Exception as err:  # noqa: BLE001 - run()'s failure is the client's 500
            return self._error(500, "RUNTIME_E_RUN_FAILED", str(err) or type(err).__name__, stack=traceback.format_exc())
        try:
            text = dump_json(result)
        except (TypeError, ValueError) as err:
            return self._error(500, "RUNTIME_E_RUN_FAILED", f"run() returned a value that is not JSON: {err}")
        service.warn_output(json.loads(text))
        self._send(200, text.encode("utf-8"))


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")
