"""The playground's HTTP server: the standard library's ThreadingHTTPServer, a JSON API and the page.

Safe by default: it listens on 127.0.0.1, answers only requests whose Host names this server
(so a rebound DNS name cannot reach it), refuses requests from other origins and API requests
another site's page made (even those it cannot read), takes no POST another site's page could
send without a CORS preflight (which it never grants), caps every body, the time a request may
take to arrive and the connections served at once, and turns every bad request into a 4xx with the reason. The
page's input is only ever data (numbers and names checked against fixed lists); nothing it sends
is executed.
"""
from __future__ import annotations

import io
import json
import socket
import threading
import time
import webbrowser
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qs, urlsplit

from microgradnn._checks import integer
from microgradnn.viz.format import GraphvizNotFound
from microgradnn.viz.live.config import LIMITS, ConfigError
from microgradnn.viz.live.session import Session

JSON_BODY_LIMIT = 64_000
DRAIN_LIMIT = 8_000_000  # a refused body up to this size is read before the answer
# the Content-Types a page on another site can POST without a CORS preflight (which this server
# never grants: OPTIONS gets 405), so that no POST here accepts them
NO_PREFLIGHT = ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data")
STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/playground.js": ("playground.js", "text/javascript; charset=utf-8"),
          "/playground.css": ("playground.css", "text/css; charset=utf-8")}
SECURITY_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                                               "img-src 'self' data:; connect-src 'self'; object-src 'none'",
                    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
                    "Cache-Control": "no-store"}


class Refused(Exception):
    """A request answered with a 4xx status and a reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status


class PlaygroundServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer holding one Session and the thread that trains it."""

    daemon_threads = True
    request_queue_size = 128  # socketserver's 5 reset connections when many arrive at once
    request_timeout = 30.0  # seconds a request (line, headers, body) may take to arrive, from its first byte
    idle_timeout = 30.0  # seconds a kept-alive connection may wait for its next request
    max_connections = 64  # connections served at once (a thread each); more are answered 503
    connection_wait = 2.0  # seconds a connection past the limit may wait for a free one (a burst of polls)

    def __init__(self, host: str = "127.0.0.1", port: int = 0, config: dict | None = None) -> None:
        self.session = Session(config)  # before binding: a refused config must not leave the port taken
        self._stop = threading.Event()  # these before binding too: a failed bind calls server_close
        self._open: dict[socket.socket, threading.Thread] = {}  # the connections being served
        self._open_lock = threading.Condition()  # notified when a connection ends
        self._full_since: float | None = None  # when the connections last reached the limit
        self.trainer = threading.Thread(target=self._train, name="playground-trainer", daemon=True)
        super().__init__((host, port), Handler)
        self.port = self.server_address[1]
        names = {host, "127.0.0.1", "localhost", "[::1]"} | (_own_names() if host in ("", "0.0.0.0") else set())
        self.allowed_hosts = {f"{name}:{self.port}" for name in names}
        self.allowed_origins = {f"http://{h}" for h in self.allowed_hosts}
        self.url = f"http://{'127.0.0.1' if host in ('', '0.0.0.0') else host}:{self.port}/"
        self.trainer.start()

    def _train(self) -> None:
        """Train while the session runs; between epochs the lock is free for the page's requests."""
        s = self.session
        while not self._stop.is_set():
            if not s.running:
                self._stop.wait(0.05)
                continue
            try:
                s.train_epoch()
                if s.epoch >= LIMITS["epochs"]:
                    s.running, s.error = False, f"paused after {LIMITS['epochs']} epochs (the playground's limit)"
            except Exception as e:  # a diverging model stops training, never the server
                s.running, s.error = False, f"training stopped: {e}"
            time.sleep(0.002)

    def shutdown(self) -> None:
        self._stop.set()
        with self._open_lock:
            self._open_lock.notify_all()  # a connection waiting for a free slot is refused now
        super().shutdown()

    def process_request(self, request, client_address) -> None:
        """Serve the connection in a thread of its own, kept until the connection ends; past
        `max_connections` it is answered 503 and closed. When the limit is reached a connection
        waits up to `connection_wait` s for one to end (a burst of short requests is served),
        and those that come while the limit is still reached after that are refused at once."""
        with self._open_lock:
            if len(self._open) >= self.max_connections:
                self._full_since = self._full_since or time.monotonic()
                self._open_lock.wait_for(lambda: len(self._open) < self.max_connections or self._stop.is_set(),
                                         max(0.0, self._full_since + self.connection_wait - time.monotonic()))
            full = len(self._open) >= self.max_connections or self._stop.is_set()
            if not full:
                self._full_since = None
                thread = threading.Thread(target=self.process_request_thread, args=(request, client_address),
                                          daemon=True)
                self._open[request] = thread
        if full:
            self._refuse_connection(request)
        else:
            thread.start()

    def _refuse_connection(self, request: socket.socket) -> None:
        """Answer 503 with the reason and close, without a thread and without waiting on the client."""
        body = json.dumps({"error": f"the playground is serving {self.max_connections} connections open at once, "
                                    "its limit; close some (other tabs, scripts) and try again"}).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in {**SECURITY_HEADERS, "Content-Type": "application/json",
                                                     "Content-Length": len(body), "Connection": "close",
                                                     "Retry-After": 1}.items())
        try:
            request.setblocking(False)  # a fresh connection's send buffer takes these few hundred bytes
            request.send(f"HTTP/1.1 503 Service Unavailable\r\n{head}\r\n".encode() + body)
            request.recv(65536)  # what the client already sent: unread, closing would reset the connection
        except OSError:
            pass
        self.shutdown_request(request)

    def shutdown_request(self, request) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is not None:
                self._open_lock.notify_all()
        super().shutdown_request(request)

    def server_close(self) -> None:
        """Free the port, stop the training, and close the connections still open: a page's
        keep-alive connection would otherwise go on being answered by the stopped server."""
        self._stop.set()
        self.session.running = False
        super().server_close()
        with self._open_lock:
            open_ = list(self._open.items())
        for conn, _ in open_:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # its handler's read ends, or its answer fails
            except OSError:
                pass
        deadline = time.monotonic() + 5  # an answer under way (a picture) is let finish
        for thread in [t for _, t in open_] + [self.trainer]:  # the trainer ends the epoch under way
            if thread.is_alive() and thread is not threading.current_thread():
                thread.join(max(0.0, deadline - time.monotonic()))

    def handle_error(self, request, client_address) -> None:
        pass  # a client that went away mid-answer is not the server's problem


class _TimedReads(io.RawIOBase):
    """A connection's reads, each given only the time its request has left: a client trickling
    a byte now and then cannot hold a handler thread longer than the server's bounds."""

    def __init__(self, sock: socket.socket, server: PlaygroundServer, write_timeout: float) -> None:
        super().__init__()
        self.sock, self.server, self.write_timeout = sock, server, write_timeout
        self.deadline: float | None = None  # None: between requests

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.deadline is None:
            wait = self.server.idle_timeout
        else:
            wait = self.deadline - time.monotonic()
            if wait <= 0:
                raise TimeoutError(f"the request did not all arrive within {self.server.request_timeout} s")
        self.sock.settimeout(wait)
        try:
            n = self.sock.recv_into(buffer)
        finally:
            self.sock.settimeout(self.write_timeout)  # the answer's writes keep their own bound
        if n and self.deadline is None:  # a request's first byte: its time starts
            self.deadline = time.monotonic() + self.server.request_timeout
        return n


class Handler(BaseHTTPRequestHandler):
    server: PlaygroundServer
    server_version = "microgradnn-playground"
    protocol_version = "HTTP/1.1"
    timeout = 30  # seconds an answer may take to write; reads have the server's bounds (_TimedReads)

    def log_message(self, format, *args) -> None:
        pass

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # the socket's own reader: left open, it would keep the socket from closing
        self._reads = _TimedReads(self.connection, self.server, self.timeout)
        self.rfile = io.BufferedReader(self._reads)

    def handle_one_request(self) -> None:
        self._reads.deadline = None  # the next request's time starts at its first byte
        super().handle_one_request()

    # ---- plumbing --------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str, extra: dict | None = None) -> None:
        self.send_response(status)
        for k, v in {**SECURITY_HEADERS, "Content-Type": content_type, "Content-Length": str(len(body)),
                     **(extra or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, payload, status: int = 200) -> None:
        self._send(status, json.dumps(payload, allow_nan=False).encode(), "application/json")

    def _handle(self, method: str) -> None:
        try:
            self._check_host()
            url = urlsplit(self.path)
            if url.path.startswith("/api/") or method == "POST":
                self._check_site()
                self._check_origin()
            query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
            if method == "POST":
                self._check_preflighted()
                self._post(url.path, query)
            else:
                self._get(url.path, query)
        except Refused as e:
            self.close_connection = True
            self._json({"error": str(e)}, e.status)
        except ConfigError as e:
            self._json({"error": str(e)}, HTTPStatus.BAD_REQUEST)
        except (ValueError, ArithmeticError) as e:  # the request was fine; the model cannot compute it (it diverged)
            self._json({"error": f"the model cannot answer this now: {e}"}, HTTPStatus.CONFLICT)
        except GraphvizNotFound as e:
            self._json({"error": str(e)}, HTTPStatus.SERVICE_UNAVAILABLE)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception as e:  # a bug answers 500 with its reason; the server and the training go on
            self._json({"error": f"internal error: {type(e).__name__}: {e}"}, HTTPStatus.INTERNAL_SERVER_ERROR)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_HEAD(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _refuse_method(self) -> None:
        self.close_connection = True
        self._json({"error": f"method {self.command} is not allowed; use GET or POST"}, HTTPStatus.METHOD_NOT_ALLOWED)

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _refuse_method

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The standard library's own refusals (a malformed request line, a line too long, an unknown
        method) as JSON with the reason, like every other refusal; an unknown method is refused like PUT."""
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED and self.command:
            self._refuse_method()
        else:
            self._json({"error": message or HTTPStatus(code).phrase}, code)

    # ---- security --------------------------------------------------------------------------

    def _check_host(self) -> None:
        host = self.headers.get("Host", "")
        if host.lower() not in self.server.allowed_hosts:
            raise Refused(HTTPStatus.FORBIDDEN, f"Host {host[:80]!r} is not this server "
                                                f"(expected one of {', '.join(sorted(self.server.allowed_hosts))})")

    def _check_site(self) -> None:
        """Refuse an API request or a POST a browser says another site's page made: an <img> or a
        no-cors fetch cannot read the answer, but it would still make the server compute it."""
        site = self.headers.get("Sec-Fetch-Site")
        # same-site is refused too: for this server it means a page on another port of the same
        # host (any local program's page), and the playground's own page only ever asks its own
        # origin. same-origin, none (typed address, bookmark) and no header at all (curl, Python,
        # older browsers) are served.
        if site is not None and site not in ("same-origin", "none"):  # browsers send these lowercase, exactly
            raise Refused(HTTPStatus.FORBIDDEN, f"a request from another site's page ({site[:40]}) is refused; "
                                                "open the playground's own page")

    def _check_origin(self) -> None:
        """Refuse a request whose Origin (sent by browsers on cross-origin fetches and on POSTs)
        is not this server's own page."""
        origin = self.headers.get("Origin")
        if origin is not None and origin.lower() not in self.server.allowed_origins:
            raise Refused(HTTPStatus.FORBIDDEN, f"cross-origin request from {origin[:80]!r} refused")

    def _content_type(self) -> str:
        """The request's media type, without parameters (`; charset=utf-8`), lowercased; '' if none."""
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    def _check_preflighted(self) -> None:
        """Refuse a POST of a type another site's page can send without a CORS preflight: a browser
        that sends neither Origin nor Sec-Fetch-Site would otherwise let that page drive the playground."""
        kind = self._content_type()
        if kind in NO_PREFLIGHT:
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                          f"a POST of Content-Type {kind} is refused: another site's page can send it without a "
                          "CORS preflight; send application/json (text/csv to /api/upload)")

    def _body(self, limit: int, types: tuple[str, ...]) -> bytes:
        kind = self._content_type()
        if kind not in types:
            raise Refused(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"Content-Type must be {' or '.join(types)}, got {kind!r}")
        length = self.headers.get("Content-Length")
        if length is None or not (length.isascii() and length.isdigit()):  # "²".isdigit() too
            raise Refused(HTTPStatus.LENGTH_REQUIRED, "a POST needs a Content-Length of decimal digits, got "
                                                      f"{'none' if length is None else repr(length[:40])}")
        if len(length) > 18:  # int() refuses over 4300 digits, and no body here is that long
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          f"the body has a {len(length)}-digit length; the limit here is {limit} bytes")
        size = int(length)
        if size > limit:
            self._drain(size)
            raise Refused(HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                          f"the body has {size} bytes; the limit here is {limit} bytes")
        try:
            body = self.rfile.read(size)
        except TimeoutError:  # the body stopped coming: a stalled or slow client
            raise Refused(HTTPStatus.REQUEST_TIMEOUT, f"the body did not arrive: a request must arrive whole "
                                                      f"within {self.server.request_timeout} s, and its {size} "
                                                      "bytes had not") from None
        if len(body) < size:  # the client closed early: never act on part of a body (a CSV cut short)
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body ended after {len(body)} of its {size} bytes "
                                                  "(Content-Length)")
        return body

    def _drain(self, length: int) -> None:
        """Read (and drop) a refused body of moderate size, so the client can read the answer
        instead of finding the connection closed mid-upload; a huge one is cut off."""
        if length > DRAIN_LIMIT:
            return
        while length > 0:
            try:
                chunk = self.rfile.read(min(65536, length))
            except TimeoutError:
                break
            if not chunk:
                break
            length -= len(chunk)

    def _json_body(self) -> dict:
        try:
            payload = json.loads(self._body(JSON_BODY_LIMIT, ("application/json",)))
        except RecursionError:
            raise Refused(HTTPStatus.BAD_REQUEST, "the body is JSON nested too deeply") from None
        except ValueError as e:  # not JSON, not UTF-8, or an integer too long for Python to read
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body is not valid JSON: {str(e)[:200]}") from None
        if not isinstance(payload, dict):
            raise Refused(HTTPStatus.BAD_REQUEST, f"the body must be a JSON object, got {type(payload).__name__}")
        return payload

    # ---- routes ----------------------------------------------------------------------------

    def _get(self, path: str, q: dict) -> None:
        s = self.server.session
        if path in STATIC:
            name, kind = STATIC[path]
            self._send(200, resources.files(__package__).joinpath("static").joinpath(name).read_bytes(), kind)
        elif path == "/api/state":
            self._json(s.state(_int(q.get("since", "0"), "since")))
        elif path == "/api/points":
            self._json(s.points())
        elif path == "/api/point":
            self._json(s.point(_int(q.get("i"), "i"), q.get("expand") == "1"))
        elif path == "/api/network":
            self._json(s.network())
        elif path == "/api/param":
            self._json(s.parameter(q.get("name", "")))
        elif path == "/api/params":
            with s.lock:
                self._json({"names": [n for n, _ in s.model.named_parameters()]})
        elif path == "/api/model.json":
            self._send(200, json.dumps(s.model_file(), indent=1).encode(), "application/json",
                       {"Content-Disposition": 'attachment; filename="playground_model.json"'})
        elif path == "/api/script.py":
            self._send(200, s.script().encode(), "text/x-python; charset=utf-8",
                       {"Content-Disposition": 'attachment; filename="playground_setup.py"'})
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no such page or API: {path[:80]}")

    def _post(self, path: str, q: dict) -> None:
        s = self.server.session
        if path == "/api/upload":
            raw = self._body(LIMITS["upload_bytes"], ("text/csv",))
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                raise Refused(HTTPStatus.BAD_REQUEST, "the CSV must be UTF-8 text") from None
            self._json({"config": s.set_upload(text)})
            return
        body = self._json_body()
        if path == "/api/config":
            self._json({"config": s.configure(body)})
        elif path == "/api/control":
            action = body.get("action")
            if action == "play":
                s.error, s.running = None, True
            elif action == "pause":
                s.running = False
            elif action == "step":
                s.running = False
                s.train_epoch()
            elif action == "reset":
                s.reset()
            else:
                raise Refused(HTTPStatus.BAD_REQUEST,
                              f"action must be play, pause, step or reset, got {str(action)[:40]!r}")
            self._json({"running": s.running, "epoch": s.epoch})
        elif path == "/api/param":
            self._json(s.set_parameter(body.get("name", ""), body.get("value")))
        else:
            raise Refused(HTTPStatus.NOT_FOUND, f"no such API: {path[:80]}")


def _own_names() -> set[str]:
    """This machine's name and addresses, for a server told to listen on every interface."""
    try:
        name, aliases, addresses = socket.gethostbyname_ex(socket.gethostname())
    except OSError:
        return {socket.gethostname()}
    return {name, *aliases, *addresses}


def _int(text, what: str) -> int:
    try:
        return int(text)
    except (TypeError, ValueError):
        raise Refused(HTTPStatus.BAD_REQUEST, f"{what} must be a whole number, got {str(text)[:40]!r}") from None


# ---- starting it -----------------------------------------------------------------------------

class Playground:
    """A running playground (from `viz.playground`): its `url`, `stop()`, and an inline view in Jupyter."""

    def __init__(self, server: PlaygroundServer) -> None:
        self.server, self.url = server, server.url
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="playground-server", daemon=True)
        self._thread.start()

    @property
    def session(self) -> Session:
        return self.server.session

    def stop(self) -> None:
        """Stop training and serving, and free the port."""
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)

    def _repr_html_(self) -> str:
        return (f'<iframe src="{self.url}" width="100%" height="820" style="border:1px solid #ddd"></iframe>'
                f'<div><a href="{self.url}" target="_blank">{self.url}</a></div>')

    def __repr__(self) -> str:
        return f"Playground({self.url})"

    def __enter__(self) -> "Playground":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def playground(port: int = 0, host: str = "127.0.0.1", *, open_browser: bool | None = None,
               config: dict | None = None) -> Playground:
    """Start the playground in the background and return it (`.url`, `.stop()`).

    In Jupyter the returned object shows the page inline; elsewhere the browser opens
    unless `open_browser=False`. `port=0` picks a free port.
    """
    port = integer(port, "playground", "port", at_least=0)  # True is not port 1
    if port > 65535:
        raise ValueError(f"playground: port must be an int in 0..65535, got {port}")
    if not isinstance(host, str):
        raise TypeError(f"playground: host must be a str, got {type(host).__name__} {host!r:.60}")
    if not host.strip():  # served on every interface, under a url that says 127.0.0.1
        raise ValueError(f"playground: host must not be empty: {host!r} listens on every interface; pass "
                         "'0.0.0.0' for that, on a trusted network only")
    pg = Playground(PlaygroundServer(host, port, config))
    if open_browser is None:
        open_browser = not _in_notebook()
    if open_browser:
        webbrowser.open(pg.url)
    return pg


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def serve(host: str = "127.0.0.1", port: int = 8000, open_browser: bool = True, out=None) -> int:
    """Run the playground in the foreground until Ctrl-C (the CLI's `playground`); returns 0."""
    import sys
    out = out or sys.stdout
    server = PlaygroundServer(host, port)
    print(f"microgradnn playground: {server.url}  (Ctrl-C to stop)", file=out, flush=True)
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        print("\nstopped", file=out, flush=True)
    finally:
        server._stop.set()
        server.server_close()
    return 0
