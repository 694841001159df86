"""A throw-away PostgreSQL server for the tests: temp data dir (0700), TCP on 127.0.0.1 only,
a random free port, password authentication (scram-sha-256) for a user with a password.

Runs the server as an unprivileged user when the tests run as root (initdb refuses root).
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import glob
import os
from pathlib import Path
import pwd
import shutil
import socket
import subprocess
import tempfile


USER = "ot_user"
PASSWORD = "s3cret"
DB = "hpo"


@dataclass(frozen=True)
class Server:
    port: int
    data_dir: Path
    bin_dir: Path
    run_as: str | None

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        return f"{driver}://{USER}:{PASSWORD}@127.0.0.1:{self.port}/{DB}"

    def show(self, setting: str) -> str:
        import psycopg2

        with contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=self.port, user=USER,
                             password=PASSWORD, dbname=DB)
        ) as conn, conn.cursor() as cur:
            cur.execute(f"SHOW {setting}")
            return str(cur.fetchone()[0])


def find_bin_dir() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def ensure_installed() -> Path | None:
    """The binaries' directory, running tests/postgres.sh (apt install) when absent."""
    bin_dir = find_bin_dir()
    if bin_dir is None:
        script = Path(__file__).with_name("postgres.sh")
        subprocess.run(["bash", str(script)], check=False, timeout=600)
        bin_dir = find_bin_dir()
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def server(bin_dir: Path) -> Iterator[Server]:
    run_as = None
    if os.geteuid() == 0:
        run_as = "postgres" if _has_user("postgres") else "nobody"
    tmp = Path(tempfile.mkdtemp(prefix="ot-pg-"))  # mkdtemp: 0700
    data, sock = tmp / "data", tmp / "sock"
    data.mkdir(mode=0o700)
    sock.mkdir(mode=0o700)
    pwfile = tmp / "pw"
    pwfile.write_text(PASSWORD + "\n")
    pwfile.chmod(0o600)
    if run_as:
        entry = pwd.getpwnam(run_as)
        for p in (tmp, data, sock, pwfile):
            os.chown(p, entry.pw_uid, entry.pw_gid)

    def run(*cmd: str) -> None:
        full = [str(bin_dir / cmd[0]), *cmd[1:]]
        if run_as:
            full = ["runuser", "-u", run_as, "--", *full]
        subprocess.run(full, check=True, capture_output=True, timeout=120, cwd=tmp)

    port = _free_port()
    run("initdb", "-D", str(data), "-U", USER, f"--pwfile={pwfile}", "--auth=scram-sha-256",
        "-E", "UTF8", "--no-sync")
    pwfile.unlink()
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {sock} -c fsync=off"
    run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(tmp / "log"), "-w", "-t", "60", "start")
    try:
        import psycopg2

        with contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=port, user=USER, password=PASSWORD,
                             dbname="postgres")
        ) as conn:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE {DB}")
        yield Server(port=port, data_dir=data, bin_dir=bin_dir, run_as=run_as)
    finally:
        run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(tmp, ignore_errors=True)


def _has_user(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True
