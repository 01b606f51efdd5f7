"""The DuckLake backend: a catalog (PostgreSQL, or a local file) and Parquet files under a data
path, reached through an in-memory DuckDB with the packaged extensions loaded.

Chosen by the database URL: `ducklake:postgres:dbname=... host=...` or `ducklake:meta.ducklake`.
One DuckDB instance per process holds the attached lake (opening one costs about a second);
each unit of work gets its own cursor, so its own transaction and temp tables.
"""

from __future__ import annotations

import importlib
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from newsflow.errors import NewsflowError, TransientError
from storage.schema import table_keys

PREFIX = "ducklake:"
ALIAS = "lake"
# The extension packages are built for one DuckDB release and refuse any other.
DUCKDB_VERSION = "1.5.5"
PACKAGES = {"ducklake": "duckdb_extension_ducklake",
            "postgres_scanner": "duckdb_extension_postgres_scanner"}
INSTALL_HINT = "pip install -e '.[lake]'"
# DuckLake buffers a transaction's Parquet output in memory; the file's 64MB writer cap is
# too tight for that, and there is one instance per process, shared by its threads.
LAKE_MEMORY = "512MB"
# Every lake write transaction updates this table's rows, so two writer transactions that
# overlap in time conflict at COMMIT and the later one runs again on the newer snapshot.
TOKEN_TABLE = "lake_commit_token"
ATTACH_ATTEMPTS = 5


class LakeSetupError(NewsflowError):
    """The DuckLake backend cannot start here: a package, the DuckDB version, or the catalog."""


class LakeConflictError(TransientError):
    """Another writer committed first: the unit of work must run again (retried by callers)."""


def is_lake(db: str | Path | None) -> bool:
    """Whether a database URL names a DuckLake catalog (else it is a DuckDB file)."""
    return db is not None and str(db).startswith(PREFIX)


def normalise(url: str) -> str:
    """The URL as every process must see it: a local catalog file made absolute."""
    catalog = url[len(PREFIX):]
    if catalog.startswith("postgres:"):
        return url
    return PREFIX + str(Path(catalog).expanduser().resolve())


def is_conflict(exc: BaseException) -> bool:
    """A write-write conflict reported at COMMIT (DuckLake's "Transaction conflict")."""
    return isinstance(exc, LakeConflictError) or (
        isinstance(exc, duckdb.Error) and "conflict" in str(exc).lower())


def extension_file(package: str) -> Path:
    """The .duckdb_extension file an extension package ships; LakeSetupError when absent."""
    name = package.replace("_", "-")
    if duckdb.__version__ != DUCKDB_VERSION:
        raise LakeSetupError(
            f"DuckLake needs duckdb=={DUCKDB_VERSION} exactly (the extension packages are built "
            f"for it), this environment has duckdb {duckdb.__version__}: {INSTALL_HINT}")
    try:
        mod = importlib.import_module(package)
    except ImportError:
        raise LakeSetupError(f"DuckLake needs the package {name}=={DUCKDB_VERSION}, not installed: "
                             f"{INSTALL_HINT}") from None
    found = sorted(Path(mod.__file__ or "").parent.glob("extensions/*/*.duckdb_extension"))
    if not found:
        raise LakeSetupError(f"the package {name} holds no .duckdb_extension file: reinstall it "
                             f"({INSTALL_HINT})")
    return found[0]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


_instances: dict[tuple[int, str], duckdb.DuckDBPyConnection] = {}
_guard = threading.Lock()
_lake_cons: set[int] = set()  # id() of the cursors handed out: is_lake_con()


def _open(url: str, data_path: str | None, memory: str) -> duckdb.DuckDBPyConnection:
    catalog = url[len(PREFIX):]
    # Nothing is fetched from the network: only the packaged files are loaded.
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False, "memory_limit": memory})
    try:
        con.execute(f"LOAD {_quote(str(extension_file(PACKAGES['ducklake'])))}")
        if catalog.startswith("postgres:"):
            con.execute(f"LOAD {_quote(str(extension_file(PACKAGES['postgres_scanner'])))}")
        # DATA_PATH only matters when the catalog is created; DuckLake keeps it afterwards.
        option = f" (DATA_PATH {_quote(data_path.rstrip('/') + '/')})" if data_path else ""
        for attempt in range(ATTACH_ATTEMPTS):
            try:
                con.execute(f"ATTACH {_quote(url)} AS {ALIAS}{option}")
                break
            except duckdb.Error as exc:
                # Processes attaching a new catalog at once race to create its tables: the
                # loser attaches again and finds them made.
                racing = "initialize" in str(exc) or "already exists" in str(exc)
                if not racing or attempt == ATTACH_ATTEMPTS - 1:
                    raise LakeSetupError(f"cannot attach the DuckLake catalog {redacted(url)}: "
                                         f"{str(exc).strip().splitlines()[0]}") from None
                backoff(attempt)
    except BaseException:
        con.close()
        raise
    return con


def redacted(url: str) -> str:
    """The URL with any password= value hidden (errors and logs must not show it)."""
    return re.sub(r"(password\s*=\s*)\S+", r"\1***", url, flags=re.I)


def instance(url: str, data_path: str | None, memory: str = LAKE_MEMORY) -> duckdb.DuckDBPyConnection:
    """This process's DuckDB instance with the lake attached (opened on first use; a forked
    child opens its own)."""
    key = (os.getpid(), url)
    with _guard:
        con = _instances.get(key)
        if con is None:
            con = _open(url, data_path, memory)
            _instances[key] = con
        return con


def close_all() -> None:
    """Close this process's lake instances (tests, and before a fork that must not share them)."""
    with _guard:
        for (pid, _), con in list(_instances.items()):
            if pid == os.getpid():
                con.close()
        _instances.clear()


@contextmanager
def cursor(url: str, data_path: str | None, memory: str | None = None
           ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A connection of its own onto the process's lake instance, using the lake; closed on exit."""
    cur = instance(url, data_path, memory or LAKE_MEMORY).cursor()
    try:
        cur.execute(f"USE {ALIAS}")
        _lake_cons.add(id(cur))
        yield cur
    finally:
        _lake_cons.discard(id(cur))
        cur.close()


def is_lake_con(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether con is a lake cursor (writes without ON CONFLICT / RETURNING there)."""
    return id(con) in _lake_cons


def backoff(attempt: int) -> None:
    """Sleep before running a conflicted unit of work again: jittered, growing, capped."""
    time.sleep(min(0.2 * 2 ** attempt, 5.0) * random.uniform(0.5, 1.5))


_CONFLICT = re.compile(r"\s*ON CONFLICT\s*(?:\(([^)]*)\))?\s*DO\s+(?:NOTHING|UPDATE SET (.*))\s*",
                       re.S | re.I)


def insert(con: duckdb.DuckDBPyConnection, table: str, source_sql: str, params: list[Any] | None,
           conflict: str = "") -> None:
    """`INSERT INTO table <source_sql> <conflict>`; on a lake, which has no unique keys for
    ON CONFLICT, the same effect: the rows staged in a temp table, the first row per key kept,
    then MERGE on the table's key (DO UPDATE's SET clause kept as written, `excluded` and the
    table's name meaning what they mean there)."""
    if not conflict or not is_lake_con(con):
        con.execute(f"INSERT INTO {table} {source_sql} {conflict}", params)
        return
    m = _CONFLICT.fullmatch(conflict)
    if not m:
        raise ValueError(f"no DuckLake equivalent for {conflict!r}")
    key = [k.strip() for k in m[1].split(",")] if m[1] else list(table_keys()[table])
    stage = f"_stage_{table}"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {stage} AS SELECT * FROM {table} LIMIT 0")
    try:
        con.execute(f"INSERT INTO {stage} {source_sql}", params)
        matched = f"WHEN MATCHED THEN UPDATE SET {m[2]} " if m[2] else ""
        con.execute(
            f"MERGE INTO {table} USING (SELECT * FROM {stage} QUALIFY row_number() OVER "
            f"(PARTITION BY {', '.join(key)} ORDER BY rowid) = 1) AS excluded ON ("
            + " AND ".join(f"{table}.{k} = excluded.{k}" for k in key)
            + f") {matched}WHEN NOT MATCHED THEN INSERT")
    finally:
        con.execute(f"DROP TABLE IF EXISTS {stage}")


def token_update(con: duckdb.DuckDBPyConnection) -> None:
    """Touch the commit token inside a lake write transaction (see TOKEN_TABLE)."""
    con.execute(f"UPDATE {TOKEN_TABLE} SET n = n + 1")


def create_token(con: duckdb.DuckDBPyConnection) -> None:
    """The commit token table with its row (two first migrations may both add one: harmless,
    every writer updates every row)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {TOKEN_TABLE} (n BIGINT NOT NULL)")
    con.execute(f"INSERT INTO {TOKEN_TABLE} SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM {TOKEN_TABLE})")
    create_leases(con)


LEASE_TABLE = "lake_leases"


def create_leases(con: duckdb.DuckDBPyConnection) -> None:
    """The table of named leases (the dedupe's, so two machines never dedupe at once)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS {LEASE_TABLE} (name VARCHAR NOT NULL, "
                "holder VARCHAR NOT NULL, until TIMESTAMPTZ NOT NULL)")


def lease_holder(con: duckdb.DuckDBPyConnection, name: str) -> tuple[str, bool] | None:
    """(holder, expired) of the lease name, None when nobody holds it."""
    row = con.execute(f"SELECT holder, until < now() FROM {LEASE_TABLE} WHERE name = ? "
                      "ORDER BY until DESC LIMIT 1", [name]).fetchone()
    return (str(row[0]), bool(row[1])) if row else None


def take_lease(con: duckdb.DuckDBPyConnection, name: str, holder: str, ttl_seconds: float) -> None:
    """Make holder the lease's holder until now + ttl (inside a writer transaction: two takers
    at once conflict on the commit token, and one runs again and finds it held)."""
    con.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = ?", [name])
    con.execute(f"INSERT INTO {LEASE_TABLE} VALUES (?, ?, now() + to_microseconds(?))",
                [name, holder, int(ttl_seconds * 1e6)])


def drop_lease(con: duckdb.DuckDBPyConnection, name: str, holder: str) -> None:
    con.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = ? AND holder = ?", [name, holder])
