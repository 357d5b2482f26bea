"""A private PostgreSQL cluster for a run: ``initdb`` into the run folder, started on a free
loopback port, filled with the scenario data, stopped when the run ends.

Theory of operation: Debian's server programs (``/usr/lib/postgresql/<major>/bin``, or
``[database] bindir``) make a cluster in ``<run>/db/pg`` (``initdb``, UTF-8, ``trust``
authentication: it listens on 127.0.0.1 only and lives as long as the run). PostgreSQL refuses
to run as root: as root, every program runs as the ``postgres`` system user (Debian's package
makes it), else as the user running fwbench. The server (``postgres``, the postmaster) is a
child of fwbench started by :func:`loadgen.procs.spawn`: in a session of its own, pinned to
``cpus.database``, watched by the reaper, so a killed fwbench leaves no cluster behind. Its
Unix socket goes to the run folder (not ``/var/run/postgresql``, which may belong to a system
cluster). The data (``world`` and ``fortune``, :mod:`loadgen.records.scenarios`) is loaded over
the wire protocol by :class:`Wire`, a few lines of the standard library (no driver in the suite).

Stopping (:meth:`Cluster.stop`): SIGINT to the postmaster (PostgreSQL's "fast" shutdown: the
backends are ended, a checkpoint written), then the process group as every server's
(:func:`loadgen.procs.stop_group`): SIGTERM, SIGKILL, and proof that nothing is left.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import stat
import struct
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loadgen.procs import child_env, forget, free_port, log_tail, spawn, stop_group
from loadgen.records.scenarios import FORTUNES, WORLD_ROWS, world_number

USER = "fwbench"
"""The cluster's superuser and the targets' database user (``trust``: no password checked)."""
PASSWORD = "fwbench"
NAME = "fwbench"
HOST = "127.0.0.1"
STOP_GRACE_S = 10.0
"""How long a fast shutdown may take before the group is stopped by signal."""


class ClusterError(RuntimeError):
    """The cluster could not be made or started: ``stage`` says where, the message why."""

    def __init__(self, stage: str, reason: str) -> None:
        super().__init__(f"postgres ({stage}): {reason}")
        self.stage = stage
        self.reason = reason


def find_bindir(configured: str = "") -> Path:
    """The folder of ``initdb`` and ``postgres``: ``configured``, else the newest
    ``/usr/lib/postgresql/*/bin``; :class:`ClusterError` when there is none."""
    if configured:
        found = [Path(configured)]
    else:
        found = sorted(
            (Path(p) for p in glob.glob("/usr/lib/postgresql/*/bin")),
            key=lambda p: _major(p.parent.name),
            reverse=True,
        )
    for d in found:
        if (d / "initdb").is_file() and (d / "postgres").is_file():
            return d
    where = configured or "/usr/lib/postgresql/*/bin"
    raise ClusterError(
        "programs",
        f"no initdb and postgres in {where}: install PostgreSQL (Debian: apt-get install "
        "postgresql, or `make system-deps`), or set [database] bindir",
    )


def available(configured: str = "") -> str | None:
    """None when a cluster can be made here, else why not (for tests to skip with)."""
    try:
        find_bindir(configured)
        _run_as()
    except ClusterError as exc:
        return str(exc)
    return None


def _major(name: str) -> tuple[int, ...]:
    return tuple(int(x) for x in name.split(".") if x.isdigit()) or (0,)


def _run_as() -> pwd.struct_passwd | None:
    """Who runs the cluster's programs: the ``postgres`` user when we are root, else us."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterError(
            "user",
            "PostgreSQL does not run as root and there is no `postgres` user to run it as "
            "(Debian's postgresql package makes one); run fwbench as another user",
        ) from None


def _reachable(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` may enter every folder from / down to ``path``."""
    groups = {user.pw_gid, *(g for g in os.getgrouplist(user.pw_name, user.pw_gid))}
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid == user.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid in groups:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


@dataclass
class Cluster:
    """A running private cluster (from :func:`start_cluster`); :meth:`stop` it when done."""

    proc: subprocess.Popen[bytes]
    data_dir: Path
    port: int
    version: str
    log: Path
    scratch: Path | None = None  # a folder of ours outside the run folder, removed at stop
    stopped: bool = field(default=False)

    @property
    def pid(self) -> int:
        """The postmaster's PID (the root of the ``database`` role the sampler reads)."""
        return self.proc.pid

    def env(self) -> dict[str, str]:
        """The ``FWBENCH_DB_*`` variables a target's server gets to find the database."""
        return {
            "FWBENCH_DB_KIND": "postgres",
            "FWBENCH_DB_URL": f"postgresql://{USER}:{PASSWORD}@{HOST}:{self.port}/{NAME}",
            "FWBENCH_DB_HOST": HOST,
            "FWBENCH_DB_PORT": str(self.port),
            "FWBENCH_DB_NAME": NAME,
            "FWBENCH_DB_USER": USER,
            "FWBENCH_DB_PASSWORD": PASSWORD,
        }

    def info(self) -> dict[str, Any]:
        """What a trial record says about the database."""
        return {"kind": "postgres", "engine": "PostgreSQL", "version": self.version}

    def alive(self) -> bool:
        return self.proc.poll() is None

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` on the scenario database (the verifier's no-caching update)."""
        with Wire(HOST, self.port, USER, NAME) as db:
            return db.query(sql)

    def stop(self, grace: float = STOP_GRACE_S) -> tuple[int, ...]:
        """Fast shutdown, then the group by signal; returns the PIDs left (empty)."""
        if self.stopped:
            return ()
        self.stopped = True
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.proc.pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(grace)
        report = stop_group(self.proc, grace=2.0)
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
        return report.left


def start_cluster(
    folder: Path,
    *,
    cpus: tuple[int, ...] = (),
    bindir: str = "",
    timeout: float = 60.0,
) -> Cluster:
    """Make, start and fill a cluster in ``folder`` (``<run>/db``): ``pg/`` its data, ``pg.log``
    its log. Raises :class:`ClusterError` (the server stopped) when any step fails."""
    programs = find_bindir(bindir)
    user = _run_as()
    folder.mkdir(parents=True, exist_ok=True)
    base, scratch = folder, None
    if user is not None and not _reachable(folder, user):
        # The run folder is closed to the postgres user (a 0700 parent): a scratch folder.
        import tempfile

        scratch = base = Path(tempfile.mkdtemp(prefix="fwbench-pg-"))
    data, sock = base / "pg", base / "pg-socket"
    for d in (data, sock):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(mode=0o700)
        if user is not None:
            os.chown(d, user.pw_uid, user.pw_gid)
    if user is not None and scratch is not None:
        os.chmod(scratch, 0o755)
    log = folder / "pg.log"
    deadline = time.monotonic() + timeout
    initdb = [str(programs / "initdb"), "-D", str(data), "-U", USER, "--auth=trust"]
    initdb += ["-E", "UTF8", "--locale=C", "--no-sync"]
    _once(initdb, user, log, deadline, "initdb")
    port = free_port(HOST)
    # A Unix socket path is at most 107 bytes: a deep run folder gets none (TCP only).
    sockdir = str(sock) if len(str(sock)) < 90 else ""
    argv = [str(programs / "postgres"), "-D", str(data), "-p", str(port)]
    argv += ["-c", f"listen_addresses={HOST}", "-c", f"unix_socket_directories={sockdir}"]
    with open(log, "ab") as out:
        proc = spawn(
            argv,
            env=child_env(),
            session=True,
            cpus=cpus,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **_as_user(user),
        )
    cluster = Cluster(proc, data, port, "", log, scratch)
    try:
        version = _wait_ready(cluster, deadline)
        cluster.version = version
        _fill(port)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _as_user(user: pwd.struct_passwd | None) -> dict[str, Any]:
    if user is None:
        return {}
    return {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}


def _once(
    argv: list[str], user: pwd.struct_passwd | None, log: Path, deadline: float, stage: str
) -> None:
    """Run one program of the cluster to its end (its output appended to ``log``)."""
    with open(log, "ab") as out:
        proc = spawn(
            argv,
            env=child_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            **_as_user(user),
        )
    try:
        code = proc.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise ClusterError(stage, "took too long") from None
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        forget(proc)
    if code != 0:
        raise ClusterError(stage, f"exited with code {code}: {log_tail(log, 5)}")


def _wait_ready(cluster: Cluster, deadline: float) -> str:
    """Wait for the server's first answer; its version (``SHOW server_version``)."""
    last = ""
    while time.monotonic() < deadline:
        if not cluster.alive():
            raise ClusterError(
                "start", f"exited with code {cluster.proc.returncode}: {log_tail(cluster.log, 5)}"
            )
        try:
            with Wire(HOST, cluster.port, USER, "postgres") as db:
                return str(db.query("SHOW server_version")[0][0]).split()[0]
        except (OSError, WireError) as exc:
            last = str(exc)
        time.sleep(0.1)
    raise ClusterError("start", f"no answer in time ({last})")


def fill_sql() -> str:
    """The scenario tables and their rows, as one SQL script."""
    world = ",".join(f"({i},{world_number(i)})" for i in range(1, WORLD_ROWS + 1))
    fortune = ",".join("({},'{}')".format(i, m.replace("'", "''")) for i, m in FORTUNES)
    return (
        "CREATE TABLE world (id integer PRIMARY KEY, randomnumber integer NOT NULL);"
        "CREATE TABLE fortune (id integer PRIMARY KEY, message text NOT NULL);"
        f"INSERT INTO world (id, randomnumber) VALUES {world};"
        f"INSERT INTO fortune (id, message) VALUES {fortune};"
        "ANALYZE world; ANALYZE fortune;"
    )


def _fill(port: int) -> None:
    with Wire(HOST, port, USER, "postgres") as db:
        db.query(f"CREATE DATABASE {NAME} ENCODING 'UTF8' TEMPLATE template0")
    with Wire(HOST, port, USER, NAME) as db:
        db.query(fill_sql())


# --- the wire protocol, as much as the suite needs ------------------------------------------


class WireError(RuntimeError):
    """The server answered with an error (or something this client does not speak)."""


class Wire:
    """PostgreSQL's frontend/backend protocol 3.0: trust authentication and simple queries
    (text results), enough to fill the tables and read the version."""

    def __init__(self, host: str, port: int, user: str, database: str, timeout: float = 30.0):
        self._last_error = ""
        self.sock = socket.create_connection((host, port), timeout=timeout)
        try:
            params = f"user\0{user}\0database\0{database}\0client_encoding\0UTF8\0\0".encode()
            body = struct.pack("!i", 196608) + params
            self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
            while True:
                kind, payload = self._message()
                if kind == b"R" and struct.unpack("!i", payload[:4])[0] != 0:
                    raise WireError("the server asks for a password (expected trust)")
                if kind == b"E":
                    raise WireError(self._last_error)
                if kind == b"Z":
                    break
        except BaseException:
            self.sock.close()
            raise

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"X\0\0\0\4")
        self.sock.close()

    def query(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run ``sql`` (one or more statements); the rows of the last result, as text."""
        data = sql.encode() + b"\0"
        self.sock.sendall(b"Q" + struct.pack("!i", len(data) + 4) + data)
        rows: list[tuple[str | None, ...]] = []
        error = ""
        while True:
            kind, payload = self._message()
            if kind == b"T":
                rows = []
            elif kind == b"D":
                rows.append(_row(payload))
            elif kind == b"E":
                error = _error(payload)
            elif kind == b"Z":
                if error:
                    raise WireError(error)
                return rows

    def _message(self) -> tuple[bytes, bytes]:
        head = self._read(5)
        kind, size = head[:1], struct.unpack("!i", head[1:])[0]
        payload = self._read(size - 4)
        if kind == b"E":  # kept: an error at start-up ends the conversation, say why
            self._last_error = _error(payload)
        return kind, payload

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise WireError(self._last_error or "the server closed the connection")
            out += chunk
        return out


def _row(payload: bytes) -> tuple[str | None, ...]:
    (count,) = struct.unpack("!h", payload[:2])
    at = 2
    out: list[str | None] = []
    for _ in range(count):
        (size,) = struct.unpack("!i", payload[at : at + 4])
        at += 4
        if size < 0:
            out.append(None)
        else:
            out.append(payload[at : at + size].decode())
            at += size
    return tuple(out)


def _error(payload: bytes) -> str:
    fields = {p[:1]: p[1:].decode("utf-8", "replace") for p in payload.split(b"\0") if p}
    return fields.get(b"M", "error")
