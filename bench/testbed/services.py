"""The testbed's own services: an HTTP front, an application tier that reads Redis and
PostgreSQL, and a TCP proxy between them that can delay traffic (the kernel's netem qdisc is not
available on these machines). Each runs as its own process (`python services.py front|app|proxy
...`) so that its CPU and memory are its own in /proc, and each serves its counters and takes
fault switches on a small HTTP control port:

    GET  /stats                 requests, errors and summed latency since start (and, for the
                                app, per dependency: its calls to postgres and redis)
    POST /fault/<kind>?on=1|0   cpu-hog, memory-pressure (front, app); network-delay (proxy)

A CPU hog is a busy thread inside the process (it takes the interpreter's lock from the request
threads, as a hog in a real service takes their core); memory pressure allocates 25 MB a second
while it is on and frees it when it goes off.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Counters:
    """Monotonic counters a scraper differences: requests, errors, summed latency (seconds)."""

    def __init__(self, *dependencies: str) -> None:
        self.lock = threading.Lock()
        self.values = {"requests": 0, "errors": 0, "latency_sum": 0.0}
        self.calls = {d: {"calls": 0, "errors": 0, "latency_sum": 0.0} for d in dependencies}

    def record(self, seconds: float, ok: bool, dependency: str | None = None) -> None:
        with self.lock:
            row = self.values if dependency is None else self.calls[dependency]
            row["requests" if dependency is None else "calls"] += 1
            row["errors"] += 0 if ok else 1
            row["latency_sum"] += seconds

    def snapshot(self) -> dict:
        with self.lock:
            return {**self.values, "calls": json.loads(json.dumps(self.calls))}


class Faults:
    """The faults a process can be switched into."""

    def __init__(self) -> None:
        self.on: dict[str, bool] = {}
        self.ballast: list[bytearray] = []
        self.lock = threading.Lock()

    def set(self, kind: str, on: bool) -> None:
        was = self.on.get(kind, False)
        self.on[kind] = on
        if kind == "cpu-hog" and on and not was:
            threading.Thread(target=self._burn, daemon=True).start()
        if kind == "memory-pressure" and on and not was:
            threading.Thread(target=self._fill, daemon=True).start()

    def _burn(self) -> None:
        while self.on.get("cpu-hog"):
            sum(i * i for i in range(20_000))

    def _fill(self) -> None:
        while self.on.get("memory-pressure"):
            block = bytearray(25 * 1024 * 1024)
            block[::4096] = b"x" * len(block[::4096])  # touch every page: resident, not reserved
            self.ballast.append(block)
            time.sleep(1.0)
        self.ballast.clear()


def control_handler(counters: Counters, faults: Faults, kinds: tuple[str, ...], serve=None):
    """A request handler for the control port; `serve(handler)` answers other paths."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args) -> None:  # keep the recording's output quiet
            pass

        def reply(self, status: int, body: bytes, kind: str = "application/json") -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/stats":
                self.reply(200, json.dumps(counters.snapshot()).encode())
            elif serve is not None:
                serve(self)
            else:
                self.reply(404, b"{}")

        def do_POST(self) -> None:
            url = urllib.parse.urlparse(self.path)
            kind = url.path.removeprefix("/fault/")
            if not url.path.startswith("/fault/") or kind not in kinds:
                self.reply(404, json.dumps({"error": f"no fault {kind}; known: {kinds}"}).encode())
                return
            on = urllib.parse.parse_qs(url.query).get("on", ["1"])[0] == "1"
            faults.set(kind, on)
            self.reply(200, json.dumps({kind: on}).encode())

    return Handler


def serve_http(port: int, handler) -> None:
    """Serves `handler` on 127.0.0.1:`port`, a thread per request, until the process ends."""
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    server.serve_forever()


def run_front(port: int, upstream: str) -> None:
    """GET /buy calls the app (through the proxy) and answers with its result."""
    counters, faults = Counters(), Faults()

    def serve(handler: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        ok = False
        try:
            customer = urllib.parse.parse_qs(urllib.parse.urlparse(handler.path).query).get("c", ["1"])[0]
            with urllib.request.urlopen(f"{upstream}/order?c={customer}", timeout=2.0) as answer:
                body = answer.read()
                ok = answer.status == 200
            handler.reply(200 if ok else 502, body)
        except Exception as e:  # an upstream failure is this request's error, not the server's
            handler.reply(502, json.dumps({"error": str(e)}).encode())
        finally:
            counters.record(time.perf_counter() - started, ok)

    serve_http(port, control_handler(counters, faults, ("cpu-hog", "memory-pressure"), serve))


def run_app(port: int, dsn: str, redis_url: str) -> None:
    """GET /order?c=N: the customer's order summary from Redis, else from PostgreSQL (then
    cached for five seconds); one request in ten also records an order."""
    import psycopg
    import redis

    counters, faults = Counters("postgres", "redis"), Faults()
    cache = redis.Redis.from_url(redis_url, socket_timeout=2.0)
    local = threading.local()

    def database():
        if getattr(local, "db", None) is None or local.db.closed:
            local.db = psycopg.connect(dsn, autocommit=True, connect_timeout=2)
        return local.db

    def timed(dependency: str, call):
        started = time.perf_counter()
        try:
            value = call()
            counters.record(time.perf_counter() - started, True, dependency)
            return value
        except Exception:
            counters.record(time.perf_counter() - started, False, dependency)
            if dependency == "postgres":
                local.db = None
            raise

    def serve(handler: BaseHTTPRequestHandler) -> None:
        started = time.perf_counter()
        ok = False
        try:
            customer = int(urllib.parse.parse_qs(urllib.parse.urlparse(handler.path).query).get("c", ["1"])[0])
            key = f"summary:{customer}"
            cached = timed("redis", lambda: cache.get(key))
            if cached is None:
                row = timed("postgres", lambda: database().execute(
                    "SELECT count(*), coalesce(sum(amount), 0) FROM testbed_orders WHERE customer = %s",
                    (customer,)).fetchone())
                cached = json.dumps({"orders": row[0], "total": float(row[1])}).encode()
                timed("redis", lambda: cache.setex(key, 5, cached))
            if customer % 10 == 0:
                timed("postgres", lambda: database().execute(
                    "INSERT INTO testbed_orders (customer, amount) VALUES (%s, %s)", (customer, 9.5)))
            handler.reply(200, cached)
            ok = True
        except Exception as e:
            handler.reply(500, json.dumps({"error": str(e)}).encode())
        finally:
            counters.record(time.perf_counter() - started, ok)

    serve_http(port, control_handler(counters, faults, ("cpu-hog", "memory-pressure"), serve))


def run_proxy(port: int, control: int, upstream_port: int, delay_ms: float) -> None:
    """A TCP proxy to 127.0.0.1:`upstream_port`; with network-delay on, every chunk towards
    the upstream waits `delay_ms` first. Its latency counter is the time from a connection's
    first bytes to their forwarding."""
    counters, faults = Counters(), Faults()

    async def pipe(reader, writer, delay: bool, first: list | None) -> None:
        try:
            while data := await reader.read(65536):
                if delay and faults.on.get("network-delay"):
                    await asyncio.sleep(delay_ms / 1000.0)
                writer.write(data)
                await writer.drain()
                if first is not None and first[1] is None:
                    first[1] = time.perf_counter()
        finally:
            writer.close()

    async def handle(client_reader, client_writer) -> None:
        started = time.perf_counter()
        forwarded = [started, None]
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        except OSError:
            client_writer.close()
            counters.record(time.perf_counter() - started, False)
            return
        await asyncio.gather(
            pipe(client_reader, up_writer, True, forwarded),
            pipe(up_reader, client_writer, False, None),
            return_exceptions=True,
        )
        counters.record((forwarded[1] or time.perf_counter()) - started, True)

    control_server = ThreadingHTTPServer(("127.0.0.1", control), control_handler(counters, faults, ("network-delay",)))
    control_server.daemon_threads = True
    threading.Thread(target=control_server.serve_forever, daemon=True).start()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", port)
        async with server:
            await server.serve_forever()

    asyncio.run(main())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="role", required=True)
    front = sub.add_parser("front")
    front.add_argument("--port", type=int, required=True)
    front.add_argument("--upstream", required=True, help="the app's URL (through the proxy)")
    app = sub.add_parser("app")
    app.add_argument("--port", type=int, required=True)
    app.add_argument("--dsn", required=True)
    app.add_argument("--redis", required=True)
    proxy = sub.add_parser("proxy")
    proxy.add_argument("--port", type=int, required=True)
    proxy.add_argument("--control", type=int, required=True)
    proxy.add_argument("--upstream-port", type=int, required=True)
    proxy.add_argument("--delay-ms", type=float, default=40.0)
    args = parser.parse_args()
    if args.role == "front":
        run_front(args.port, args.upstream)
    elif args.role == "app":
        run_app(args.port, args.dsn, args.redis)
    else:
        run_proxy(args.port, args.control, args.upstream_port, args.delay_ms)


if __name__ == "__main__":
    main()
