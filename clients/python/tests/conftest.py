"""Test support: the real ``tokenlb`` binary (``$TOKENLB_BIN``) as manager and as Wopan
emulator, each on a free loopback port with its own temporary directory.

Every wait here is bounded (a deadline, then a clear failure); no test asserts on timing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx
import pytest

ADMIN_KEY = "py-client-test-admin-key-0123456789"
#: The emulator's tokens (UUID text, as Wopan's are), added to the manager's default pool.
TOKENS = [
    "c3f0362b-0001-4997-a9c2-0478702a5f01",
    "c3f0362b-0002-4997-a9c2-0478702a5f02",
    "c3f0362b-0003-4997-a9c2-0478702a5f03",
]
READY_DEADLINE_S = 60.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def tokenlb_bin() -> str:
    """The binary under test: ``$TOKENLB_BIN``, else ``tokenlb`` on PATH, else the
    workspace's debug or release build."""
    env = os.environ.get("TOKENLB_BIN")
    if env:
        if not os.access(env, os.X_OK):
            pytest.fail(f"TOKENLB_BIN={env} is not an executable file")
        return env
    found = shutil.which("tokenlb")
    if found:
        return found
    root = Path(__file__).resolve().parents[3]
    for sub in ("target/debug/tokenlb", "target/release/tokenlb"):
        if (root / sub).is_file():
            return str(root / sub)
    pytest.fail("no tokenlb binary: set TOKENLB_BIN (cargo build -p tokenlb builds one)")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plain_http() -> httpx.Client:
    return httpx.Client(timeout=10.0, trust_env=False)


class Process:
    """A ``tokenlb`` subcommand on a loopback port, logging to a file in its directory."""

    def __init__(self, name: str, args: List[str], workdir: Path, env: Dict[str, str], ready_path: str) -> None:
        self.name = name
        self.args = args
        self.workdir = workdir
        self.env = env
        self.ready_path = ready_path
        self.port = free_port()
        self.proc: Optional["subprocess.Popen[bytes]"] = None
        self.logs: List[Path] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        assert self.proc is None, "already running"
        log_path = self.workdir / f"{self.name}-{len(self.logs)}.log"
        self.logs.append(log_path)
        argv = [tokenlb_bin()] + [a.replace("{listen}", f"127.0.0.1:{self.port}") for a in self.args]
        env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENLB_")}
        env.update(self.env)
        with open(log_path, "wb") as out:
            self.proc = subprocess.Popen(argv, cwd=self.workdir, env=env, stdout=out, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + READY_DEADLINE_S
        with plain_http() as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.log_text()}")
                try:
                    if http.get(self.url + self.ready_path, timeout=2.0).status_code < 500:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
        self.stop()
        pytest.fail(f"{self.name} not ready within {READY_DEADLINE_S} s:\n{self.log_text()}")

    def stop(self) -> None:
        """Stops it (SIGTERM, then SIGKILL after a bounded wait) and waits for the exit."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=20)
        self.proc = None

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:] for p in self.logs if p.exists())


class Emulator(Process):
    """``tokenlb wopan-emulator`` with a fixture holding :data:`TOKENS`."""

    def __init__(self, workdir: Path) -> None:
        fixture = {
            "user": {"phone": "186****0000", "name": "wo_test"},
            "tokens": [{"access_token": t} for t in TOKENS],
            "personal": [{"name": "BD-another", "children": [{"name": "01.mp4", "size": 1024}]}],
        }
        path = workdir / "fixture.json"
        path.write_text(json.dumps(fixture))
        super().__init__(
            "emulator",
            ["wopan-emulator", "--listen", "{listen}", "--fixture", str(path)],
            workdir,
            {},
            "/_emulator/state",
        )

    def control(self, **settings: Any) -> Dict[str, Any]:
        with plain_http() as http:
            r = http.post(self.url + "/_emulator/control", json=settings)
            assert r.status_code == 200, r.text
            answer: Dict[str, Any] = r.json()
            return answer

    def faults(self, **tokens: str) -> None:
        """``faults(t0="expired")``: sets the fault of TOKENS[0] (ok, expired, rate_limited, quota)."""
        self.control(tokens={TOKENS[int(k[1:])]: v for k, v in tokens.items()})


class Manager(Process):
    """``tokenlb manager`` with a temporary data dir, a known admin key and optional client
    keys; restartable in place (same port, same data)."""

    def __init__(
        self,
        workdir: Path,
        client_keys: Optional[List[str]] = None,
        config_toml: Optional[str] = None,
    ) -> None:
        data = workdir / "data"
        data.mkdir(exist_ok=True)
        env = {
            "TOKENLB_ADMIN_KEY": ADMIN_KEY,
            "TOKENLB_ADMIN_PASSWORD": "py-client-test-password",
            "TOKENLB_STATS_FLUSH_MS": "100",
            "TOKENLB_TOKENS_FILE": str(workdir / "no-tokens.json"),
        }
        if client_keys:
            env["TOKENLB_CLIENT_KEYS"] = ",".join(client_keys)
        if config_toml is not None:
            (workdir / "tokenlb.toml").write_text(config_toml)
            env["TOKENLB_CONFIG"] = str(workdir / "tokenlb.toml")
        super().__init__(
            "manager",
            ["manager", "--listen", "{listen}", "--data-dir", str(data)],
            workdir,
            env,
            "/healthz",
        )

    def admin(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            headers={"Authorization": f"Bearer {ADMIN_KEY}"},
            timeout=10.0,
            trust_env=False,
        )

    def add_tokens(self, tokens: List[str], pool: Optional[str] = None) -> Dict[str, str]:
        """Adds tokens; returns token value → token id."""
        ids: Dict[str, str] = {}
        with self.admin() as http:
            for i, t in enumerate(tokens):
                body: Dict[str, Any] = {"token": t, "name": f"t{i}"}
                if pool is not None:
                    body["pool"] = pool
                r = http.post("/api/token/add", json=body)
                assert r.status_code == 201, r.text
                ids[t] = r.json()["id"]
        return ids

    def rows(self) -> Dict[str, Dict[str, Any]]:
        """The stats rows by token name (t0, t1, …)."""
        with self.admin() as http:
            r = http.get("/api/token/stats")
            assert r.status_code == 200, r.text
            return {row["name"]: row for row in r.json()["tokens"]}


WEBAPI_KEY = "py-client-test-webapi-key-0123456789"


class WebApi(Process):
    """``tokenlb webapi`` leasing from ``manager``, calling ``emulator``, with a known key."""

    def __init__(self, workdir: Path, manager_url: str, emulator_url: str) -> None:
        super().__init__(
            "webapi",
            [
                "webapi", "--listen", "{listen}", "--manager-url", manager_url,
                "--wopan-base-url", emulator_url, "--data-dir", str(workdir / "data"),
                "--api-key", WEBAPI_KEY,
            ],
            workdir,
            {},
            "/healthz",
        )


@pytest.fixture
def webapi(tmp_path: Path, manager: "Manager", emulator: "Emulator") -> Iterator[WebApi]:
    """A web API over :func:`manager` and :func:`emulator`, its key :data:`WEBAPI_KEY`."""
    d = tmp_path / "webapi"
    d.mkdir()
    w = WebApi(d, manager.url, emulator.url)
    w.start()
    yield w
    w.stop()


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    d = tmp_path / "emulator"
    d.mkdir()
    e = Emulator(d)
    e.start()
    yield e
    e.stop()


@pytest.fixture
def manager(tmp_path: Path) -> Iterator[Manager]:
    """A manager whose default pool holds the three emulator tokens (names t0, t1, t2)."""
    d = tmp_path / "manager"
    d.mkdir()
    m = Manager(d)
    m.start()
    m.add_tokens(TOKENS)
    yield m
    m.stop()


REPORTER_KEY = "reporter-key-0123456789abcdef"


@pytest.fixture
def reporter_manager(tmp_path: Path) -> Iterator[Manager]:
    """Like ``manager``, with a client key ``REPORTER_KEY`` that may report by token id
    (DESIGN §9's ``report_by_id``): what a client needs for the reports it makes without a
    lease (tokens used from its cache while the manager was down)."""
    d = tmp_path / "reporter"
    d.mkdir()
    config = f'client_keys = [{{ key = "{REPORTER_KEY}", name = "reporter", report_by_id = true }}]\n'
    m = Manager(d, config_toml=config)
    m.start()
    m.add_tokens(TOKENS)
    yield m
    m.stop()


@pytest.fixture
def keyed_manager(tmp_path: Path) -> Iterator[Manager]:
    """A manager with client key ``svc-key-0123456789abcdef`` configured."""
    d = tmp_path / "keyed"
    d.mkdir()
    m = Manager(d, client_keys=["svc-key-0123456789abcdef"])
    m.start()
    m.add_tokens(TOKENS[:1])
    yield m
    m.stop()
