"""Real parts for the Python SDK's tests: redis-server processes on free ports, a
3-master Redis Cluster, and real gateways (Bun, `src/main.bun.ts`) — each started
here and stopped at the end of the session."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import redis

ROOT = Path(__file__).resolve().parents[2]
BUN = ROOT / "node_modules" / ".bin" / "bun"
JWT_SECRET = "python-sdk-test-secret-python-sdk-test"


def free_port(highest: int = 65535) -> int:
    """A loopback port that was free a moment ago, at most `highest`."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port <= highest:
            return port


def eventually(check: Callable[[], Any], timeout_s: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def _pings(port: int) -> bool:
    try:
        with redis.Redis(port=port, socket_connect_timeout=0.5) as probe:
            return probe.ping()
    except redis.RedisError:
        return False


def _cluster_ok(port: int) -> bool:
    with redis.Redis(port=port, decode_responses=True) as node:
        return node.execute_command("CLUSTER INFO").get("cluster_state") == "ok"


class RedisServer:
    """One redis-server of the test's own; it can be stopped and started again on the same port."""

    def __init__(self, *extra: str) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.dir = tempfile.mkdtemp(prefix="taskstream-py-redis-")
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None
        self.start()
        self.client = redis.Redis(port=self.port, decode_responses=True)

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.dir, *self.extra],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        eventually(lambda: _pings(self.port), what=f"redis-server on {self.port}")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self) -> None:
        self.client.close()
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three cluster-enabled redis-servers joined by `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3) -> None:
        # A node's cluster bus listens on its port + 10000.
        self.ports = [free_port(highest=55535) for _ in range(masters)]
        self.dir = tempfile.mkdtemp(prefix="taskstream-py-cluster-")
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        for port in self.ports:
            node_dir = os.path.join(self.dir, str(port))
            os.mkdir(node_dir)
            self.processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", node_dir,
                     "--cluster-enabled", "yes", "--cluster-config-file", os.path.join(node_dir, "nodes.conf")],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        for port in self.ports:
            eventually(lambda: _pings(port), what=f"cluster node {port}")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{port}" for port in self.ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        for port in self.ports:
            eventually(
                lambda: _cluster_ok(port),
                timeout_s=30,
                what=f"cluster_state:ok on {port}",
            )
        self.url = "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def stop(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Gateway:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_gateway(**env: str) -> Gateway:
    process = subprocess.Popen(
        [str(BUN), "src/main.bun.ts"],
        cwd=ROOT,
        env={"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", ""), "PORT": "0", "HOST": "127.0.0.1", "DEMO": "0", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    output = b""
    deadline = time.monotonic() + 20
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        output += line
        match = re.search(rb'"message":"listening","url":"([^"]+)"', line)
        if match:
            # Keep draining its output so the gateway never blocks on a full pipe.
            threading.Thread(target=process.stdout.read, daemon=True).start()
            return Gateway(match.group(1).decode(), process)
    process.kill()
    raise RuntimeError(f"gateway did not start:\n{output.decode(errors='replace')}")


def jwt(claims: dict[str, Any], secret: str = JWT_SECRET) -> str:
    """An HS256 JWT, as the gateway's AUTH_JWT_SECRET checks it."""
    encode = lambda part: base64.urlsafe_b64encode(part).rstrip(b"=").decode()  # noqa: E731
    signing = encode(json.dumps({"alg": "HS256", "typ": "JWT"}).encode()) + "." + encode(json.dumps(claims).encode())
    signature = hmac.new(secret.encode(), signing.encode(), hashlib.sha256).digest()
    return signing + "." + encode(signature)


def http_json(method: str, url: str, body: Any = None) -> tuple[int, Any]:
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def history(gateway: Gateway, agent_id: str, task_id: str) -> list[dict[str, Any]]:
    status, body = http_json("GET", f"{gateway.url}/api/v1/agents/{agent_id}/tasks/{task_id}/events?limit=1000")
    assert status == 200, body
    return body["events"]


def command(gateway: Gateway, agent_id: str, task_id: str, kind: str, reason: str | None = None) -> str:
    status, body = http_json("POST", f"{gateway.url}/api/v1/agents/{agent_id}/tasks/{task_id}/{kind}", {} if reason is None else {"reason": reason})
    assert status == 202, body
    return body["command_id"]


_tasks = iter(range(1_000_000))


@pytest.fixture
def task_id(request: pytest.FixtureRequest) -> str:
    """A fresh task id per test."""
    return f"py-{request.node.name[:40].replace('[', '-').replace(']', '')}-{os.getpid()}-{next(_tasks)}"


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def gateway(redis_server: RedisServer) -> Iterator[Gateway]:
    """A gateway on the session's redis-server: what the SDK publishes over Redis, it serves."""
    started = start_gateway(REDIS_URL=redis_server.url)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def auth_gateway() -> Iterator[Gateway]:
    """A gateway that requires a JWT (memory log)."""
    started = start_gateway(AUTH_JWT_SECRET=JWT_SECRET)
    yield started
    started.stop()


@pytest.fixture(scope="session")
def cluster() -> Iterator[RedisCluster]:
    started = RedisCluster()
    yield started
    started.stop()
