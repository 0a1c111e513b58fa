"""A private PostgreSQL server for the store benchmark (initdb + pg_ctl in a temp dir on a free port).

Run as the ``postgres`` system user when we are root (initdb refuses root). Unlike the test fixture the server
keeps ``fsync`` on (a benchmark of a durable store) and gets ``shared_buffers`` sized for a million utterances.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

SETTINGS = ("shared_buffers=2GB", "effective_cache_size=8GB", "maintenance_work_mem=256MB")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    dirs = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(Path(d).parent.name))
    if not dirs or not (Path(dirs[-1]) / "initdb").exists():
        raise SystemExit("no PostgreSQL binaries (initdb) here: install postgresql or pass --pg-url")
    return Path(dirs[-1])


@contextmanager
def private_server() -> Iterator[str]:
    """Start a server, yield its URL (database ``postgres``), stop it and remove its files."""
    bindir = _bindir()
    prefix: list[str] = []
    root = Path(tempfile.mkdtemp(prefix="callscribe-bench-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam("postgres")
        os.chown(root, user.pw_uid, user.pw_gid)
        prefix = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        done = subprocess.run([*prefix, *args], capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise SystemExit(f"{Path(args[0]).name} failed: {(done.stderr or done.stdout).strip()}")

    data, port = root / "data", _free_port()
    try:
        run(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C")
        opts = " ".join([f"-p {port} -k {root} -c listen_addresses=127.0.0.1", *(f"-c {s}" for s in SETTINGS)])
        run(str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w", "-t", "60", "start")
        try:
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
        finally:
            run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)
