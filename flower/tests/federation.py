"""A real Flower federation on loopback for the tests: a SuperLink, SuperNodes each behind a
recording TCP relay (what a node sends, byte for byte), and ``flwr run`` of the app. Every
process is Flower's own, from the virtual environment the tests run in."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

APP = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition, what: str, timeout: float, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(every)


class Relay:
    """Forwards connections from its port to ``target``, keeping every byte the client side sent."""

    def __init__(self, target: int) -> None:
        self.target = target
        self.sent = bytearray()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if record:
                    with self._lock:
                        self.sent.extend(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self) -> None:
        self._server.close()


@dataclass
class SuperNode:
    name: str
    data_dir: Path
    state_dir: Path
    sent_log: Path
    relay: Relay
    home: Path
    log: Path
    process: Optional[subprocess.Popen] = None
    starts: int = 0

    def node_config(self) -> str:
        return " ".join(
            f'{k}="{v}"'
            for k, v in {
                "name": self.name,
                "data-dir": self.data_dir,
                "state-dir": self.state_dir,
                "label-column": "anomaly",
                "drop-columns": "datetime,changepoint",
                "sent-log": self.sent_log,
            }.items()
        )

    def progress(self) -> str:
        logs = list(self.state_dir.glob("run-*/progress.log"))
        return logs[0].read_text() if logs else ""

    def results(self) -> dict[int, dict]:
        import json

        found = {}
        for path in self.state_dir.glob("run-*/round-*.json"):
            found[int(path.stem.split("-")[1])] = json.loads(path.read_text())
        return found


@dataclass
class Federation:
    root: Path
    link_port: int = field(default_factory=free_port)
    link: Optional[subprocess.Popen] = None
    nodes: list[SuperNode] = field(default_factory=list)
    processes: list[subprocess.Popen] = field(default_factory=list)

    def env(self, home: Path) -> dict[str, str]:
        home.mkdir(parents=True, exist_ok=True)
        # Flower's processes start one another by name (flower-superexec, flwr-clientapp, ...).
        return {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "FLWR_HOME": str(home)}

    def _spawn(self, argv: list[str], home: Path, log: Path) -> subprocess.Popen:
        # A session of its own, so that stopping it stops the processes it started too (the
        # SuperLink's SuperExec starts a session of its own and exits with its parent).
        process = subprocess.Popen(
            argv, env=self.env(home), stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True
        )
        self.processes.append(process)
        return process

    def start_link(self) -> None:
        self.link = self._spawn(
            [
                str(BIN / "flower-superlink"), "--insecure", "--disable-runtime-dependency-installation",
                "--port", str(self.link_port),
            ],
            self.root / "link-home",
            self.root / "link.log",
        )
        wait_for(lambda: _listening(self.link_port), "the SuperLink listening", 60)

    def add_node(self, name: str, data_dir: Path) -> SuperNode:
        folder = self.root / name
        node = SuperNode(
            name=name,
            data_dir=data_dir,
            state_dir=folder / "state",
            sent_log=folder / "sent.jsonl",
            relay=Relay(self.link_port),
            home=folder / "home",
            log=folder / "supernode.log",
        )
        self.nodes.append(node)
        self.start_node(node)
        return node

    def start_node(self, node: SuperNode) -> None:
        node.starts += 1
        node.process = self._spawn(
            [
                str(BIN / "flower-supernode"), "--insecure",
                "--superlink", f"127.0.0.1:{node.relay.port}",
                "--port", str(free_port()),
                "--node-config", node.node_config(),
            ],
            node.home,
            node.log,
        )

    def kill_node(self, node: SuperNode) -> None:
        """SIGKILL to the SuperNode and everything it started: no goodbye to the SuperLink."""
        assert node.process is not None
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait()

    def run(self, run_config: dict[str, object], log: Path) -> subprocess.Popen:
        """``flwr run`` of the app against this SuperLink, streaming the run's log to ``log``."""
        home = self.root / "cli-home"
        home.mkdir(parents=True, exist_ok=True)
        (home / "config.toml").write_text(
            '[superlink]\ndefault = "test"\n\n'
            f'[superlink.test]\naddress = "127.0.0.1:{self.link_port}"\ninsecure = true\n'
        )
        argv = [str(BIN / "flwr"), "run", str(APP), "test", "--stream"]
        for key, value in run_config.items():
            argv += ["--run-config", f"{key}={_toml(value)}"]
        return self._spawn(argv, home, log)

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                process.wait()
        for node in self.nodes:
            node.relay.close()


def _toml(value: object) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    return str(value).lower() if isinstance(value, bool) else str(value)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0
