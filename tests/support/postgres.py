"""A throwaway PostgreSQL for DuckLake catalogs (tests/lake and bench/lake.py): initdb and
pg_ctl on a temporary directory and port, scram-sha-256 on 127.0.0.1, removed after."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import duckdb

from storage import lake

PASSWORD = "lake-tests-only"
USER = "newsflow"


def pg_tool(name: str) -> str | None:
    """A PostgreSQL program: on PATH, or in Debian's versioned directory."""
    found = shutil.which(name)
    if found:
        return found
    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(d, name).exists():
            return str(Path(d, name))
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Postgres:
    port: int

    def url(self, dbname: str) -> str:
        """A DuckLake URL for a database of this server (the password comes from PGPASSWORD)."""
        return f"ducklake:postgres:dbname={dbname} host=127.0.0.1 port={self.port} user={USER}"

    def create_database(self, name: str) -> None:
        """CREATE DATABASE through DuckDB's postgres extension (no psql needed)."""
        con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                     "autoload_known_extensions": False})
        try:
            con.execute(f"LOAD '{lake.extension_file(lake.PACKAGES['postgres_scanner'])}'")
            con.execute(f"ATTACH 'dbname=postgres host=127.0.0.1 port={self.port} user={USER}' "
                        "AS pg (TYPE postgres)")
            con.execute(f"CALL postgres_execute('pg', 'CREATE DATABASE {name}', use_transaction := false)")
        finally:
            con.close()


def _run(cmd: list[str], owner: str | None) -> None:
    """A PostgreSQL tool, as the postgres user when we are root (initdb refuses root)."""
    if owner:
        cmd = ["runuser", "-u", owner, "--", *cmd]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)


class Unavailable(Exception):
    """PostgreSQL or the lake packages are not here: the reason says which."""


@contextmanager
def throwaway_postgres() -> Iterator[Postgres]:
    """A PostgreSQL server for the block; PGPASSWORD set for it meanwhile."""
    initdb, pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
    if not (initdb and pg_ctl):
        raise Unavailable("PostgreSQL is not installed (no initdb / pg_ctl; .ci/run installs it)")
    try:
        for package in lake.PACKAGES.values():
            lake.extension_file(package)
    except lake.LakeSetupError as exc:
        raise Unavailable(f"DuckLake packages missing: {exc}") from None
    owner = "postgres" if os.geteuid() == 0 else None
    uid = -1
    if owner:
        try:
            uid = pwd.getpwnam(owner).pw_uid
        except KeyError:
            raise Unavailable("running as root without a postgres user to run initdb as") from None
    root = Path(tempfile.mkdtemp(prefix="newsflow-pg-"))
    os.chmod(root, 0o755)
    pgdir = root / "pg"
    pgdir.mkdir()
    if owner:
        os.chown(pgdir, uid, -1)
    (root / "pw").write_text(PASSWORD)
    os.chmod(root / "pw", 0o644)
    port = _free_port()
    data = str(pgdir / "data")
    try:
        _run([initdb, "-D", data, "-U", USER, "--auth=scram-sha-256", f"--pwfile={root / 'pw'}",
              "-E", "UTF8"], owner)
        _run([pg_ctl, "-D", data, "-w", "-l", str(pgdir / "log"), "-o",
              f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir} -c max_connections=200",
              "start"], owner)
        old = os.environ.get("PGPASSWORD")
        os.environ["PGPASSWORD"] = PASSWORD
        try:
            yield Postgres(port)
        finally:
            lake.close_all()
            if old is None:
                os.environ.pop("PGPASSWORD", None)
            else:
                os.environ["PGPASSWORD"] = old
            _run([pg_ctl, "-D", data, "-m", "immediate", "stop"], owner)
    finally:
        shutil.rmtree(root, ignore_errors=True)
