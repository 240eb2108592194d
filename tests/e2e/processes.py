"""Real processes for fault tests: start them, kill them with SIGKILL, start them again."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests

from tests.conftest import crm_event, signed_request, wait_for

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


_LOWEST_PORT = 20000  # above the well-known and the common registered services' ports


def free_port() -> int:
    """A free port below the kernel's range of ephemeral ports. The servers here are killed and started again
    on their port; meanwhile any client's connection may be given an ephemeral one, and a port taken from
    that range can be gone when the server comes back (seen: a RabbitMQ node restarting into eaddrinuse)."""
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = range(_LOWEST_PORT, ephemeral_low)
    for port in random.sample(ports, min(200, len(ports))):
        with socket.socket() as probe, contextlib.suppress(OSError):
            probe.bind(("127.0.0.1", port))
            return port
    raise RuntimeError(f"no free port between {_LOWEST_PORT} and {ephemeral_low}")


def _accepting(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def wait_for_port(port: int, timeout: float = 60.0, what: str = "the server") -> None:
    wait_for(lambda: _accepting(port), timeout, what)


class Process:
    """One command in its own process group, its output appended to a log file."""

    def __init__(self, name: str, command: Sequence[str] | str, env: Mapping[str, str], log: Path) -> None:
        self.name, self.command, self.env, self.log = name, command, dict(env), log
        self.popen: subprocess.Popen | None = None

    def start(self) -> Process:
        with self.log.open("a") as output:
            output.write(f"\n=== {self.name} starts\n")
            self.popen = subprocess.Popen(
                self.command,
                shell=isinstance(self.command, str),
                cwd=ROOT,
                env={
                    **os.environ,
                    "PATH": f"{BIN}:{os.environ['PATH']}",
                    "PYTHONUNBUFFERED": "1",
                    # Tests run at any hour: no customer's quiet hours, no reminders, unless a test asks.
                    "QUIET_HOURS": "off",
                    "REMINDER_COUNT": "0",
                    **self.env,
                },
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    def kill(self) -> None:
        """SIGKILL to the whole group: no handler runs, nothing is flushed, as when a machine dies."""
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()

    def stop(self) -> None:
        if self.popen and self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()


def procfile_commands(path: Path = ROOT / "infra" / "Procfile") -> dict[str, str]:
    """The Procfile's lines by name, so a test can start, kill and restart each one on its own."""
    commands = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, command = line.split(":", 1)
            commands[name.strip()] = command.strip()
    return commands


def post_burst(url: str, count: int, prefix: str, threads: int = 8) -> dict[str, dict[str, Any]]:
    """Post ``count`` signed CRM events, each for its own customer; the answers of those answered 202.

    A request cut off by a dying server simply has no outcome: only what was accepted must not be lost.
    """

    def post(n: int) -> tuple[str, dict[str, Any] | None]:
        event = crm_event(f"{prefix}-{n}", external_id=f"{prefix}-customer-{n}", email=f"c{n}@example.com")
        body, headers = signed_request(event)
        try:
            response = requests.post(url, data=body, headers=headers, timeout=10)
        except requests.RequestException:
            return event["id"], None
        return event["id"], response.json() if response.status_code == 202 else None

    with ThreadPoolExecutor(threads) as pool:
        outcomes = dict(pool.map(post, range(count)))
    return {event_id: outcome for event_id, outcome in outcomes.items() if outcome is not None}


def log_tail(log: Path, characters: int = 6000) -> str:
    return log.read_text()[-characters:] if log.exists() else ""


def dump(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)[:3000]


class RedisServer:
    """A Redis of the test's own on a free port, which it may kill.

    With ``config`` (the shipped infra/redis.conf) it keeps its append-only file in ``directory`` and comes
    back with what it held; without, it keeps nothing, like a machine that was lost.
    """

    def __init__(self, directory: Path, config: Path | None = None) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        command = ["redis-server", *([str(config)] if config else ["--save", "", "--appendonly", "no"])]
        command += ["--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(directory)]
        self.process = Process("redis", command, {}, directory / "redis.log")

    def start(self) -> RedisServer:
        self.process.start()
        wait_for_port(self.port, what="Redis")
        return self

    def kill(self) -> None:
        self.process.kill()


class RabbitmqServer:
    """A RabbitMQ node of the test's own (its own name, ports and data), which it may kill and restart.

    Debian's rabbitmq-server runs the node as the rabbitmq user in a session of its own, so the node's files
    live in a folder that user owns, and SIGKILL goes to the Erlang VM named in its pid file.
    """

    def __init__(self) -> None:
        self.port, dist_port = free_port(), free_port()
        self.node_name = f"closeloop-test-{self.port}@localhost"
        self.url = f"amqp://guest:guest@127.0.0.1:{self.port}"
        self.directory = Path(tempfile.mkdtemp(prefix="closeloop-rabbitmq-"))
        (self.directory / "enabled_plugins").write_text("[].")
        (self.directory / "rabbitmq.conf").write_text(f"listeners.tcp.default = 127.0.0.1:{self.port}\n")
        for path in (self.directory, *self.directory.iterdir()):
            shutil.chown(path, "rabbitmq", "rabbitmq")
        self.pid_file = self.directory / "node.pid"
        environment = {
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.directory / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.directory / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.directory / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.directory / "rabbitmq"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(self.directory / "feature_flags"),
            "RABBITMQ_PID_FILE": str(self.pid_file),
        }
        self.process = Process("rabbitmq", ["rabbitmq-server"], environment, self.directory / "server.log")

    def start(self) -> RabbitmqServer:
        self.process.start()
        try:
            wait_for_port(self.port, timeout=90, what="RabbitMQ")
        except AssertionError as error:
            logs = "".join(log_tail(path, 3000) for path in sorted(self.directory.rglob("*.log")))
            raise AssertionError(f"{error}; the node's logs end with:\n{logs}") from None
        return self

    def kill(self) -> None:
        if self.pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(self.pid_file.read_text().strip()), signal.SIGKILL)
            self.pid_file.unlink()
        # The node's helpers run in its own session, out of our process group: end them too, and wait
        # for the port to close, so a restart never meets a half-dead node of the same name.
        subprocess.run(["pkill", "-KILL", "-f", self.node_name], check=False)
        self.process.kill()
        wait_for(lambda: not _accepting(self.port), timeout=30, what="the killed node's port to close")

    def remove(self) -> None:
        self.kill()
        shutil.rmtree(self.directory, ignore_errors=True)
