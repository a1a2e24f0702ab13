"""Real servers for integration tests, each in a folder of its own on a free localhost port.

Every server is a handle with `start()`, `stop()` and `running()`, usable as a context manager
(stopped on exit). `start()` after `stop()` restarts it on the same port with the same data
(PostgreSQL keeps its data folder; Redis runs without persistence and moto keeps objects in
memory, so those two come back empty). A start waits for the server's health check and raises
`ServerStartError` with the tail of the server's log when it is not healthy in time.

PostgreSQL runs as the ``postgres`` OS user when the tests run as root (it refuses to run as
root); its folder is then owned by that user, and the folders above it are made traversable
(``o+x``, no listing) so that user can reach it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

HOST = "127.0.0.1"
BIN_DIR = Path(sys.executable).parent
"""The virtual environment's scripts (mlflow, prefect, moto_server)."""

LOG_TAIL_CHARS = 4000
OFFLINE = {
    "DO_NOT_TRACK": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
S3_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
"""What moto_server accepts; callers pass these to clients of `S3Server`."""


class ServerStartError(RuntimeError):
    """A server did not become healthy in time; the message holds the tail of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def log_tail(path: Path, chars: int = LOG_TAIL_CHARS) -> str:
    """The last ``chars`` characters of a log file ('' when it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return text[-chars:]


def _port_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - http on loopback
            return bool(200 <= response.status < 300)  # noqa: PLR2004
    except (urllib.error.URLError, OSError, ValueError):
        return False


def _child_env(extra: Mapping[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MLFLOW_", "PUMPTWIN_"))}
    env.update(OFFLINE)
    env.update(extra)
    return env


PR_SET_PDEATHSIG = 1
"""prctl option: the signal a child gets when the thread that started it dies (Linux)."""


def _die_with_parent() -> Callable[[], object] | None:
    """What the child runs before exec so it gets SIGTERM when the test process dies (Linux only).

    libc is loaded here, in the parent: the child only makes one C call, no import, no lock.
    """
    if not sys.platform.startswith("linux"):
        return None
    import ctypes  # noqa: PLC0415

    prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    return functools.partial(prctl, PR_SET_PDEATHSIG, int(signal.SIGTERM))


class _Process:
    """A server process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log: Path, env: Mapping[str, str], cwd: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log = log
        self.env = dict(env)
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None

    def spawn(self) -> None:
        if self.alive():
            return
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("ab")
        self.proc = subprocess.Popen(  # noqa: S603 - fixed argv
            self.argv,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=self.env,
            cwd=self.cwd,
            start_new_session=True,
            preexec_fn=_die_with_parent(),  # noqa: PLW1509 - one C call, no import or lock
        )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_healthy(self, healthy: Callable[[], bool], timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                code = None if self.proc is None else self.proc.returncode
                raise ServerStartError(f"{self.name} exited with {code}; log tail:\n{log_tail(self.log)}")
            if healthy():
                return
            time.sleep(0.25)
        self.terminate()
        raise ServerStartError(f"{self.name} not healthy after {timeout_s:.0f} s; log tail:\n{log_tail(self.log)}")

    def terminate(self, timeout_s: float = 20.0) -> None:
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=timeout_s)
        if proc is not None:
            # Children left in the group (workers of a server whose parent already exited).
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        self.proc = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class _Server:
    """Context-manager protocol shared by the handles."""

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def stop(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


# --- PostgreSQL ---------------------------------------------------------------------------------


def postgres_bin_dir() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` holding initdb and pg_ctl, or None."""
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
    )
    for bin_dir in reversed(candidates):
        if (bin_dir / "initdb").exists() and (bin_dir / "pg_ctl").exists():
            return bin_dir
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and (Path(found).parent / "initdb").exists() else None


def _as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _make_traversable(path: Path) -> None:
    """Let other users pass through every folder above ``path`` (adds ``o+x`` only where missing)."""
    for folder in [path, *path.parents]:
        mode = folder.stat().st_mode
        if not mode & 0o001:
            folder.chmod(mode | 0o001)


class PostgresServer(_Server):
    """A PostgreSQL cluster in ``<root>/postgres``: password auth over TCP, a Unix socket in the folder."""

    host: str
    port: int
    user: str
    password: str

    def __init__(self, root: Path, bin_dir: Path, port: int, user: str = "pumptwin", password: str = "pumptwin-pw"):
        """Describe a cluster (nothing runs until `init` and `start`)."""
        self.root = Path(root).absolute() / "postgres"
        self.bin_dir = bin_dir
        self.host = HOST
        self.port = port
        self.user = user
        self.password = password
        self.data_dir = self.root / "data"
        self.socket_dir = self.root / "socket"
        self.log = self.root / "postgres.log"

    def _run(self, *argv: str, timeout_s: float = 120.0) -> subprocess.CompletedProcess[str]:
        cmd = list(argv)
        if _as_root():
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        return subprocess.run(  # noqa: S603 - fixed argv
            cmd, capture_output=True, text=True, timeout=timeout_s, cwd=self.root, check=False
        )

    def init(self) -> None:
        """Create the folder and the cluster (initdb) with a superuser `user` authenticated by password.

        Does nothing when the folder already holds a cluster (its data is kept).
        """
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if _as_root():
            _make_traversable(self.root.parent)
            for path in (self.root, self.socket_dir, pwfile):
                shutil.chown(path, user="postgres", group="postgres")
        self.root.chmod(0o700)
        result = self._run(
            str(self.bin_dir / "initdb"),
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            f"--pwfile={pwfile}",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "--encoding=UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        if result.returncode != 0:
            raise ServerStartError(
                f"initdb failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}"
            )

    def start(self) -> None:
        """Start the cluster (pg_ctl) and wait until it accepts password logins over TCP."""
        if self.running():
            return
        options = f"-p {self.port} -h {self.host} -k {self.socket_dir} -c fsync=off -c full_page_writes=off"
        result = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log), "-o", options, "-w",
            "-t", "60", "start",
        )  # fmt: skip
        if result.returncode != 0:
            raise ServerStartError(
                f"postgres did not start ({result.returncode}): {result.stderr[-1000:]}\n"
                f"log tail:\n{log_tail(self.log)}"
            )
        deadline = time.monotonic() + 30
        while not self._accepts():
            if time.monotonic() > deadline:
                raise ServerStartError(
                    f"postgres accepts no logins on port {self.port}; log tail:\n{log_tail(self.log)}"
                )
            time.sleep(0.25)

    def stop(self, mode: str = "fast") -> None:
        """Stop the cluster (``mode``: smart, fast or immediate); the data folder stays."""
        if not (self.data_dir / "postmaster.pid").exists():
            return
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the cluster runs (pg_ctl status)."""
        if not self.data_dir.exists():
            return False
        return self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "status").returncode == 0

    def _accepts(self) -> bool:
        import psycopg2  # noqa: PLC0415

        try:
            psycopg2.connect(**self._connect_kwargs("postgres"), connect_timeout=2).close()
        except psycopg2.OperationalError:
            return False
        return True

    def _connect_kwargs(self, database: str) -> dict[str, object]:
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password, "dbname": database}

    def url(self, database: str, driver: str = "postgresql+psycopg2") -> str:
        """SQLAlchemy URL of a database of this cluster, e.g. ``postgresql+asyncpg://u:p@127.0.0.1:5432/prefect``."""
        return (
            f"{driver}://{quote(self.user, safe='')}:{quote(self.password, safe='')}@{self.host}:{self.port}/{database}"
        )

    def execute(self, database: str, sql: str) -> None:
        """Run one statement in ``database`` with autocommit."""
        import psycopg2  # noqa: PLC0415

        conn = psycopg2.connect(**self._connect_kwargs(database), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def create_database(self, name: str) -> None:
        """Create database ``name`` owned by `user` unless it exists (idempotent)."""
        import psycopg2  # noqa: PLC0415
        from psycopg2 import sql  # noqa: PLC0415

        conn = psycopg2.connect(**self._connect_kwargs("postgres"), connect_timeout=5)
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cur.fetchone() is None:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        finally:
            conn.close()


def start_postgres(root: Path) -> PostgresServer:
    """Create and start a PostgreSQL cluster under ``root`` on a free port.

    Raises:
        FileNotFoundError: No PostgreSQL binaries.
        ServerStartError: initdb failed or the server did not accept logins in time.
    """
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl) under /usr/lib/postgresql or on PATH")
    server = PostgresServer(root, bin_dir, free_port())
    server.init()
    server.start()
    return server


# --- Processes behind HTTP or TCP health checks -------------------------------------------------


class _ProcessServer(_Server):
    """A server run as one child process (group) with a health check."""

    name = "server"
    start_timeout_s = 60.0

    def __init__(self, process: _Process) -> None:
        self.process = process

    def healthy(self) -> bool:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        """Start the process (unless it runs) and wait for its health check."""
        if self.running():
            return
        self.process.spawn()
        self.process.wait_healthy(self.healthy, self.start_timeout_s)

    def stop(self) -> None:
        """Terminate the process group (SIGTERM, then SIGKILL) and wait for it."""
        self.process.terminate()

    def running(self) -> bool:
        """Whether the process lives and passes its health check."""
        return self.process.alive() and self.healthy()

    @property
    def log(self) -> Path:
        """The server's log file."""
        return self.process.log


class RedisServer(_ProcessServer):
    """redis-server without persistence (a restart comes back empty)."""

    name = "redis"
    start_timeout_s = 30.0

    def __init__(self, root: Path, port: int, binary: str) -> None:
        """Describe the server in ``<root>/redis``."""
        folder = Path(root).absolute() / "redis"
        folder.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self.port = port
        argv = [binary, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no", "--dir", str(folder)]
        super().__init__(_Process("redis", argv, folder / "redis.log", _child_env({}), folder))

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:PORT/0``."""
        return f"redis://{self.host}:{self.port}/0"

    def healthy(self) -> bool:
        """PING answers PONG."""
        try:
            with socket.create_connection((self.host, self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False


def start_redis(root: Path) -> RedisServer:
    """Start redis-server under ``root`` on a free port.

    Raises:
        FileNotFoundError: No redis-server binary.
        ServerStartError: Not answering PING in time.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise FileNotFoundError("no redis-server on PATH")
    server = RedisServer(root, free_port(), binary)
    server.start()
    return server


class S3Server(_ProcessServer):
    """moto_server: an S3-compatible HTTP endpoint, objects in memory (a restart comes back empty)."""

    name = "moto_server"
    start_timeout_s = 60.0

    def __init__(self, root: Path, port: int, binary: Path) -> None:
        """Describe the server in ``<root>/s3``."""
        folder = Path(root).absolute() / "s3"
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        argv = [str(binary), "-H", HOST, "-p", str(port)]
        super().__init__(_Process("moto_server", argv, folder / "moto.log", _child_env(S3_CREDENTIALS), folder))

    def healthy(self) -> bool:
        """The endpoint answers HTTP (moto's dashboard page)."""
        return _http_ok(f"{self.endpoint_url}/moto-api/")

    def client(self) -> object:
        """A boto3 S3 client of this endpoint with the test credentials."""
        import boto3  # noqa: PLC0415

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=S3_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=S3_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            region_name=S3_CREDENTIALS["AWS_DEFAULT_REGION"],
        )

    def create_bucket(self, name: str) -> None:
        """Create bucket ``name`` unless it exists (idempotent)."""
        client = self.client()
        existing = {b["Name"] for b in client.list_buckets().get("Buckets", [])}  # type: ignore[attr-defined]
        if name not in existing:
            client.create_bucket(Bucket=name)  # type: ignore[attr-defined]


def start_s3(root: Path) -> S3Server:
    """Start moto_server under ``root`` on a free port.

    Raises:
        FileNotFoundError: No moto_server in the environment.
        ServerStartError: Not answering in time.
    """
    binary = BIN_DIR / "moto_server"
    if not binary.exists():
        raise FileNotFoundError(f"no moto_server at {binary}")
    server = S3Server(root, free_port(), binary)
    server.start()
    return server


class MlflowServer(_ProcessServer):
    """An MLflow tracking server: a database backend and proxied artifacts (``--artifacts-destination``)."""

    name = "mlflow server"
    start_timeout_s = 120.0

    def __init__(
        self, root: Path, port: int, backend_uri: str, artifacts_destination: str, s3_endpoint_url: str | None
    ) -> None:
        """Describe the server in ``<root>/mlflow``."""
        folder = Path(root).absolute() / "mlflow"
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.url = f"http://{HOST}:{port}"
        argv = [
            str(BIN_DIR / "mlflow"), "server", "--backend-store-uri", backend_uri,
            "--artifacts-destination", artifacts_destination, "--host", HOST, "--port", str(port), "--workers", "1",
        ]  # fmt: skip
        extra = dict(S3_CREDENTIALS)
        if s3_endpoint_url is not None:
            extra["MLFLOW_S3_ENDPOINT_URL"] = s3_endpoint_url
        super().__init__(_Process("mlflow server", argv, folder / "mlflow.log", _child_env(extra), folder))

    def healthy(self) -> bool:
        """GET /health answers 200."""
        return _http_ok(f"{self.url}/health")


def start_mlflow(root: Path, backend_uri: str, artifacts_destination: str, s3_endpoint_url: str | None) -> MlflowServer:
    """Start an MLflow tracking server under ``root`` on a free port (healthy in about 25 s).

    Args:
        root: Folder for its log.
        backend_uri: Backend store, e.g. ``postgresql+psycopg2://u:p@127.0.0.1:5432/mlflow``.
        artifacts_destination: Where the server puts artifacts, e.g. ``s3://bucket/mlflow``.
        s3_endpoint_url: Endpoint of an S3-compatible server, or None for AWS.

    Raises:
        FileNotFoundError: No mlflow in the environment.
        ServerStartError: /health not answering in time.
    """
    if not (BIN_DIR / "mlflow").exists():
        raise FileNotFoundError(f"no mlflow at {BIN_DIR / 'mlflow'}")
    server = MlflowServer(root, free_port(), backend_uri, artifacts_destination, s3_endpoint_url)
    server.start()
    return server


class PrefectServer(_ProcessServer):
    """A Prefect API server on a database (UI off, analytics off)."""

    name = "prefect server"
    start_timeout_s = 120.0

    def __init__(self, root: Path, port: int, database_url: str) -> None:
        """Describe the server in ``<root>/prefect`` (also its PREFECT_HOME)."""
        folder = Path(root).absolute() / "prefect"
        folder.mkdir(parents=True, exist_ok=True)
        self.port = port
        self.api_url = f"http://{HOST}:{port}/api"
        argv = [str(BIN_DIR / "prefect"), "server", "start", "--host", HOST, "--port", str(port)]
        extra = {
            "PREFECT_API_DATABASE_CONNECTION_URL": database_url,
            "PREFECT_HOME": str(folder),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_UI_ENABLED": "false",
        }
        super().__init__(_Process("prefect server", argv, folder / "prefect.log", _child_env(extra), folder))

    def healthy(self) -> bool:
        """GET /api/health answers 200."""
        return _http_ok(f"{self.api_url}/health")


def start_prefect(root: Path, database_url: str) -> PrefectServer:
    """Start a Prefect server under ``root`` on a free port.

    Args:
        root: Folder for its home and log.
        database_url: ``postgresql+asyncpg://u:p@127.0.0.1:5432/prefect`` (with pg_trgm available).

    Raises:
        FileNotFoundError: No prefect in the environment.
        ServerStartError: /api/health not answering in time.
    """
    if not (BIN_DIR / "prefect").exists():
        raise FileNotFoundError(f"no prefect at {BIN_DIR / 'prefect'}")
    server = PrefectServer(root, free_port(), database_url)
    server.start()
    return server
