"""Records the testbed data set for TopoMAD (issue 32): a small service chain on this machine
under load, faults injected one at a time, five metrics per component scraped every second.

    front --HTTP--> proxy --TCP--> app --> postgres
                                       \\-> redis

`front`, `proxy` and `app` are this folder's services.py, each its own process; PostgreSQL and
Redis are the machine's (127.0.0.1:5432, database `test`; 127.0.0.1:6379). A load generator
sends /buy requests to the front at a rate that follows a four-minute cycle. Every second the
recorder reads, per component, the common metrics a topology needs:

    cpu      percent of a core: /proc/<pid>/stat (PostgreSQL: all its processes; Redis: INFO cpu)
    memory   MB resident: /proc/<pid>/status (PostgreSQL: all its processes; Redis: used_memory)
    latency  ms per request: the services' own counters; for postgres and redis the app's time
             per call to them
    rate     per second: requests served (PostgreSQL: pg_stat_database commits; Redis: commands)
    errors   per second: failed requests (PostgreSQL: the app's failed calls plus rollbacks;
             Redis: the app's failed calls plus error replies)

The first part is fault-free (train.csv); then faults at one component at a time (test.csv,
labelled), each on for `--fault-seconds` with `--gap-seconds` between: a CPU hog and memory
pressure in the front and the app, slow queries at PostgreSQL (two sessions running heavy
joins), a CPU hog at Redis (Lua busy loops that block it), memory pressure at Redis (large
keys), and network delay at the proxy. Writes train.csv, test.csv, edges.csv, faults.csv and
recording.json (the schedule, rates and machine) into `--out`; the services' logs go to a
temporary folder it names.

    python bench/testbed/record.py --out bench/testbed/data   # needs psycopg and redis
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import pathlib
import platform
import random
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

COMPONENTS = ["front", "proxy", "app", "postgres", "redis"]
EDGES = [("front", "proxy"), ("proxy", "app"), ("app", "postgres"), ("app", "redis")]
METRICS = ["cpu", "memory", "latency", "rate", "errors"]
SCHEDULE = [
    ("app", "cpu-hog"),
    ("postgres", "slow-queries"),
    ("proxy", "network-delay"),
    ("redis", "cpu-hog"),
    ("front", "memory-pressure"),
    ("app", "memory-pressure"),
    ("redis", "memory-pressure"),
    ("front", "cpu-hog"),
]
PORTS = {"front": 18080, "proxy": 18082, "proxy-control": 18083, "app": 18081}
TICK = os.sysconf("SC_CLK_TCK")
HERE = pathlib.Path(__file__).resolve().parent


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=2.0) as answer:
        return json.loads(answer.read())


def switch(component: str, kind: str, on: bool) -> None:
    port = PORTS["proxy-control"] if component == "proxy" else PORTS[component]
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/fault/{kind}?on={int(on)}", method="POST", data=b""
    )
    urllib.request.urlopen(request, timeout=2.0).read()


def prepare_database(dsn: str) -> None:
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as db:
        db.execute(
            "CREATE TABLE IF NOT EXISTS testbed_orders "
            "(id bigserial PRIMARY KEY, customer int NOT NULL, amount numeric NOT NULL)"
        )
        if db.execute("SELECT count(*) FROM testbed_orders").fetchone()[0] < 200_000:
            db.execute("TRUNCATE testbed_orders")
            db.execute(
                "INSERT INTO testbed_orders (customer, amount) SELECT 1 + (random() * 1999)::int, "
                "round((random() * 100)::numeric, 2) FROM generate_series(1, 200000)"
            )
        db.execute("CREATE INDEX IF NOT EXISTS testbed_orders_customer ON testbed_orders (customer)")
        db.execute("ANALYZE testbed_orders")


class Background:
    """A fault the recorder itself causes (at PostgreSQL or Redis), on while `on` is set."""

    def __init__(self, work, threads: int = 1) -> None:
        self.on = threading.Event()
        self.work = work
        self.threads = threads

    def start(self) -> None:
        self.on.set()
        for _ in range(self.threads):
            threading.Thread(target=self.work, args=(self.on,), daemon=True).start()

    def stop(self) -> None:
        self.on.clear()


def slow_queries(dsn: str):
    import psycopg

    def work(on: threading.Event) -> None:
        with psycopg.connect(dsn, autocommit=True) as db:
            while on.is_set():
                db.execute(
                    "SELECT count(*) FROM testbed_orders a JOIN testbed_orders b "
                    "ON a.customer = b.customer WHERE a.id % 50 = 0"
                ).fetchone()

    return Background(work, threads=2)


def redis_cpu_hog(url: str):
    import redis

    def work(on: threading.Event) -> None:
        r = redis.Redis.from_url(url)
        while on.is_set():
            r.eval("local i = 0 while i < 1500000 do i = i + 1 end return i", 0)
            time.sleep(0.03)

    return Background(work)


def redis_memory_pressure(url: str):
    import redis

    def work(on: threading.Event) -> None:
        r = redis.Redis.from_url(url)
        block, i = b"x" * (1 << 20), 0
        while on.is_set() and i < 400:
            r.set(f"testbed:ballast:{i}", block)
            i += 1
            time.sleep(0.1)
        while on.is_set():
            time.sleep(0.1)
        for k in range(i):
            r.delete(f"testbed:ballast:{k}")

    return Background(work)


def load(stop: threading.Event, started: float, mean_rate: float, threads: int) -> None:
    """One load thread: requests to the front, the whole pool at `mean_rate` per second ± 40%
    over a four-minute cycle; customers drawn with a skew (a few are popular, as in a shop)."""
    rng = random.Random(threading.get_ident())
    while not stop.is_set():
        t = time.monotonic() - started
        rate = mean_rate * (1.0 + 0.4 * math.sin(2 * math.pi * t / 240.0))
        interval = threads / rate
        begun = time.monotonic()
        customer = min(2000, int(rng.paretovariate(1.2)))
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORTS['front']}/buy?c={customer}", timeout=3.0).read()
        except Exception:
            pass  # the front counts its own failures
        stop.wait(max(0.0, interval - (time.monotonic() - begun)))


def cpu_ticks(pid: int) -> int | None:
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime, stime
    except (OSError, IndexError, ValueError):
        return None


def rss_mb(pid: int) -> float:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def postgres_pids() -> list[int]:
    pids = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


class Scraper:
    """Counters read every second, turned into each component's five metrics."""

    def __init__(self, pids: dict[str, int], dsn: str, redis_url: str) -> None:
        import psycopg
        import redis

        self.pids = pids
        self.db = psycopg.connect(dsn, autocommit=True)
        self.redis = redis.Redis.from_url(redis_url)
        self.previous: dict | None = None
        self.latency = {c: 0.0 for c in COMPONENTS}

    def counters(self) -> dict:
        now = time.monotonic()
        stats = {
            "front": get_json(f"http://127.0.0.1:{PORTS['front']}/stats"),
            "proxy": get_json(f"http://127.0.0.1:{PORTS['proxy-control']}/stats"),
            "app": get_json(f"http://127.0.0.1:{PORTS['app']}/stats"),
        }
        ticks = {c: {self.pids[c]: cpu_ticks(self.pids[c]) or 0} for c in ("front", "proxy", "app")}
        pg = postgres_pids()
        ticks["postgres"] = {p: t for p in pg if (t := cpu_ticks(p)) is not None}
        memory = {c: rss_mb(self.pids[c]) for c in ("front", "proxy", "app")}
        memory["postgres"] = sum(rss_mb(p) for p in pg)
        commits, rollbacks = self.db.execute(
            "SELECT xact_commit, xact_rollback + deadlocks FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        info = self.redis.info()
        memory["redis"] = info["used_memory"] / 2**20
        redis_cpu = info["used_cpu_sys"] + info["used_cpu_user"]
        return {
            "time": now, "stats": stats, "ticks": ticks, "memory": memory,
            "pg": (commits, rollbacks),
            "redis": (redis_cpu, info["total_commands_processed"], info.get("total_error_replies", 0)),
        }

    def sample(self) -> list[float] | None:
        """One row of 25 values (component-major), or None for the first call."""
        now = self.counters()
        before, self.previous = self.previous, now
        if before is None:
            return None
        dt = now["time"] - before["time"]
        row = []
        app_now, app_before = now["stats"]["app"]["calls"], before["stats"]["app"]["calls"]
        for c in COMPONENTS:
            if c in ("front", "proxy", "app"):
                s, b = now["stats"][c], before["stats"][c]
                served = s["requests"] - b["requests"]
                failed = s["errors"] - b["errors"]
                waited = s["latency_sum"] - b["latency_sum"]
            else:
                s, b = app_now[c], app_before[c]
                served = s["calls"] - b["calls"]
                failed = s["errors"] - b["errors"]
                waited = s["latency_sum"] - b["latency_sum"]
            if c == "redis":
                cpu = (now["redis"][0] - before["redis"][0]) / dt * 100.0
                rate = (now["redis"][1] - before["redis"][1]) / dt
                failed += now["redis"][2] - before["redis"][2]
            else:
                ticks_now, ticks_before = now["ticks"][c], before["ticks"][c]
                used = sum(t - ticks_before.get(p, 0) for p, t in ticks_now.items())
                cpu = used / TICK / dt * 100.0
                if c == "postgres":
                    rate = (now["pg"][0] - before["pg"][0]) / dt
                    failed += now["pg"][1] - before["pg"][1]
                else:
                    rate = served / dt
            if served > 0:
                self.latency[c] = waited / served * 1000.0
            row += [cpu, now["memory"][c], self.latency[c], rate, failed / dt]
        return row


def start_services(dsn: str, redis_url: str, logs: pathlib.Path) -> dict[str, subprocess.Popen]:
    python = sys.executable
    script = str(HERE / "services.py")
    commands = {
        "app": [python, script, "app", "--port", str(PORTS["app"]), "--dsn", dsn, "--redis", redis_url],
        "proxy": [python, script, "proxy", "--port", str(PORTS["proxy"]), "--control",
                  str(PORTS["proxy-control"]), "--upstream-port", str(PORTS["app"])],
        "front": [python, script, "front", "--port", str(PORTS["front"]), "--upstream",
                  f"http://127.0.0.1:{PORTS['proxy']}"],
    }
    processes = {}
    for name, command in commands.items():
        log = open(logs / f"{name}.log", "w")
        processes[name] = subprocess.Popen(command, stdout=log, stderr=log)
    for name, port in (("app", PORTS["app"]), ("proxy", PORTS["proxy-control"]), ("front", PORTS["front"])):
        for _ in range(100):
            try:
                get_json(f"http://127.0.0.1:{port}/stats")
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise SystemExit(f"{name} did not start; see {logs / (name + '.log')}")
    return processes


def write_csv(path: pathlib.Path, stamps, rows, labels=None) -> None:
    names = [f"{c}.{m}" for c in COMPONENTS for m in METRICS]
    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["timestamp", *names] + (["label"] if labels is not None else []))
        for k, (stamp, row) in enumerate(zip(stamps, rows)):
            cells = [stamp, *(f"{v:.4f}" for v in row)]
            out.writerow(cells + ([labels[k]] if labels is not None else []))


def main() -> None:
    parser = argparse.ArgumentParser(description="Record the testbed data set (see the module doc).")
    parser.add_argument("--out", type=pathlib.Path, required=True)
    parser.add_argument("--train-seconds", type=int, default=420)
    parser.add_argument("--fault-seconds", type=int, default=30)
    parser.add_argument("--gap-seconds", type=int, default=45)
    parser.add_argument("--rate", type=float, default=30.0, help="mean requests per second")
    parser.add_argument("--load-threads", type=int, default=6)
    parser.add_argument("--dsn", default="host=127.0.0.1 port=5432 dbname=test user=postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    # The services' own output goes beside, not into the data set.
    logs = pathlib.Path(tempfile.mkdtemp(prefix="vigil-testbed-logs-"))
    prepare_database(args.dsn)
    processes = start_services(args.dsn, args.redis, logs)
    background = {
        ("postgres", "slow-queries"): slow_queries(args.dsn),
        ("redis", "cpu-hog"): redis_cpu_hog(args.redis),
        ("redis", "memory-pressure"): redis_memory_pressure(args.redis),
    }
    stop = threading.Event()
    started = time.monotonic()
    for _ in range(args.load_threads):
        threading.Thread(target=load, args=(stop, started, args.rate, args.load_threads), daemon=True).start()
    scraper = Scraper({n: p.pid for n, p in processes.items()}, args.dsn, args.redis)
    # The test part: a gap, then each fault for fault_seconds followed by a gap.
    plan = []
    at = args.gap_seconds
    for component, kind in SCHEDULE:
        plan.append((at, at + args.fault_seconds - 1, component, kind))
        at += args.fault_seconds + args.gap_seconds
    test_seconds = at
    total = args.train_seconds + test_seconds
    stamps, rows = [], []
    try:
        next_tick = time.monotonic()
        scraper.sample()  # the first counters: differences start from here
        active = None
        for step in range(total):
            next_tick += 1.0
            time.sleep(max(0.0, next_tick - time.monotonic()))
            rows.append(scraper.sample())
            stamps.append(int(time.time()))
            # Faults switch between samples: the step sampled next is the first faulty one.
            t = step + 1 - args.train_seconds
            for start, end, component, kind in plan:
                if t == start:
                    active = (component, kind)
                    if active in background:
                        background[active].start()
                    else:
                        switch(component, kind, True)
                elif t == end + 1 and active == (component, kind):
                    if active in background:
                        background[active].stop()
                    else:
                        switch(component, kind, False)
                    active = None
            if step % 60 == 0:
                print(f"step {step}/{total}", file=sys.stderr, flush=True)
    finally:
        stop.set()
        for b in background.values():
            b.stop()
        for p in processes.values():
            p.terminate()
    train_rows, test_rows = rows[: args.train_seconds], rows[args.train_seconds :]
    labels = [0] * test_seconds
    for start, end, _, _ in plan:
        labels[start : end + 1] = [1] * (end - start + 1)
    write_csv(args.out / "train.csv", stamps[: args.train_seconds], train_rows)
    write_csv(args.out / "test.csv", stamps[args.train_seconds :], test_rows, labels)
    (args.out / "edges.csv").write_text("source,target\n" + "".join(f"{a},{b}\n" for a, b in EDGES))
    (args.out / "faults.csv").write_text(
        "start,end,component,kind\n" + "".join(f"{s},{e},{c},{k}\n" for s, e, c, k in plan)
    )
    (args.out / "recording.json").write_text(json.dumps({
        "command": " ".join(sys.argv),
        "train_seconds": args.train_seconds, "test_seconds": test_seconds,
        "fault_seconds": args.fault_seconds, "gap_seconds": args.gap_seconds,
        "mean_rate": args.rate, "load_threads": args.load_threads,
        "faults": [{"start": s, "end": e, "component": c, "kind": k} for s, e, c, k in plan],
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "recorded": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }, indent=2) + "\n")
    print(
        f"wrote {args.out}: {len(train_rows)} training and {len(test_rows)} test steps "
        f"(the services' logs are in {logs})",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
