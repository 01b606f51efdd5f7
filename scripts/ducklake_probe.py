"""Probe whether newsflow's schema and write patterns work on DuckLake; prints the facts.

Run it with the project's venv (the dev and lake extras install duckdb==1.5.5 and the
extension packages):

    .venv/bin/python scripts/ducklake_probe.py

It checks a local-file catalog, and a PostgreSQL catalog on a throwaway cluster when initdb is
found (stopped and removed after). Nothing is fetched from the network. See
docs/ducklake.md for what the output means for newsflow.
"""

from __future__ import annotations

import importlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from storage.schema import MIGRATIONS  # noqa: E402

# The extension packages ship one file each; postgres_scanner's file name gives the entry point
# DuckDB looks for (the `duckdb-extension-postgres` package holds the same binary renamed to
# postgres.duckdb_extension, which fails with "did not contain the expected entrypoint").
PACKAGES = {"postgres_scanner": "duckdb_extension_postgres_scanner", "ducklake": "duckdb_extension_ducklake"}
PG_BIN = [Path("/usr/local/bin"), Path("/usr/lib/postgresql/15/bin")]
PASSWORD = "probe-only"


def extension_file(package: str) -> Path:
    """The .duckdb_extension file an extension package ships."""
    mod = importlib.import_module(package)
    return next(Path(mod.__file__ or "").parent.glob("extensions/*/*.duckdb_extension"))


def lake(catalog: str, data: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the packaged extensions loaded and the lake attached and in use."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False,
                                 "autoload_known_extensions": False})
    for package in PACKAGES.values():
        con.execute(f"LOAD '{extension_file(package)}'")
    con.execute(f"ATTACH 'ducklake:{catalog}' AS lake (DATA_PATH '{data}/')")
    con.execute("USE lake")
    return con


def statements(sql: str) -> list[str]:
    """The statements of a migration, comment lines dropped (comments may hold semicolons)."""
    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in text.split(";") if s.strip()]


def without_constraints(stmt: str) -> str:
    """A CREATE TABLE without PRIMARY KEY / UNIQUE (DuckLake has neither)."""
    stmt = re.sub(r",\s*PRIMARY KEY\s*\([^)]*\)", "", stmt)
    return re.sub(r"\s+(PRIMARY KEY|UNIQUE)\b", "", stmt)


def first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[-1][:160]


def probe_schema(catalog: str, data: Path) -> None:
    """Apply every migration; print each statement DuckLake refuses and whether dropping
    constraints mends it; then the statements newsflow's writes use."""
    con = lake(catalog, data)
    for m in MIGRATIONS:
        for stmt in statements(m.sql):
            try:
                con.execute(stmt)
            except duckdb.Error as exc:
                try:
                    con.execute(without_constraints(stmt))
                    mended = "ok without PRIMARY KEY/UNIQUE"
                except duckdb.Error as exc2:
                    mended = f"still fails: {first_line(exc2)}"
                print(f"  migration {m.version}: {stmt.split('(')[0].strip()[:50]}: "
                      f"{first_line(exc)} -> {mended}")
    checks = [
        "INSERT INTO sources VALUES ('s','p','k',['a.com'],NULL,NULL,NULL,true,now())",
        "INSERT INTO sources VALUES ('s','p','k',['a.com'],NULL,NULL,NULL,true,now()) "
        "ON CONFLICT (name) DO NOTHING",
        "MERGE INTO sources t USING (SELECT 's' AS name, 'P2' AS publisher) s ON t.name = s.name "
        "WHEN MATCHED THEN UPDATE SET publisher = s.publisher",
        "INSERT INTO runs VALUES ('r','ingest',now(),NULL,'running','{\"a\":1}',NULL)",
        "SELECT params ->> 'a' FROM runs",
        "INSERT INTO raw_pages (url, source, fetched_at, status, body_sha256, body_size, body) "
        "VALUES ('u','s',now(),200,'h',1,'\\x01'::BLOB)",
        "UPDATE raw_pages SET status = 404 WHERE url = 'u' RETURNING url",
        "UPDATE raw_pages SET status = n.s FROM (SELECT unnest(['u']) AS url, 410 AS s) n "
        "WHERE raw_pages.url = n.url",
        "CREATE TEMP TABLE _batch AS SELECT 'a' AS article_id",
        "SELECT count(*) FROM articles", "SELECT count(*) FROM stories",
        "SELECT count(*) FROM story_members", "SELECT count(*) FROM source_health",
    ]
    for q in checks:
        try:
            con.execute(q)
            print(f"  ok:   {q[:90]}")
        except duckdb.Error as exc:
            print(f"  FAIL: {q[:90]}\n        {first_line(exc)}")
    con.close()


RACE = """
import sys, time
sys.path.insert(0, {here!r})
from ducklake_probe import lake
con = lake(sys.argv[1], __import__('pathlib').Path(sys.argv[2]))
who, mode = sys.argv[3], sys.argv[4]
con.execute("BEGIN")
if mode == "append":
    con.execute("INSERT INTO t SELECT ? || x, ? FROM range(100) r(x)", [who, who])
elif mode == "anti-join":
    con.execute("INSERT INTO t SELECT 'same', ? WHERE NOT EXISTS (SELECT 1 FROM t WHERE k = 'same')", [who])
elif mode == "update":
    con.execute("UPDATE t SET w = ? WHERE k = 'seed'", [who])
time.sleep(1.0)  # both transactions are open at once
try:
    con.execute("COMMIT")
    print("committed")
except Exception as exc:
    print("COMMIT failed: " + str(exc).strip().splitlines()[-1][:120])
"""


def probe_concurrency(catalog: str, data: Path, env: dict[str, str]) -> None:
    """Two processes, each with one open transaction at once, per write pattern."""
    code = RACE.format(here=str(Path(__file__).resolve().parent))
    for mode in ("append", "anti-join", "update"):
        con = lake(catalog, data)
        con.execute("CREATE OR REPLACE TABLE t (k VARCHAR, w VARCHAR)")
        con.execute("INSERT INTO t VALUES ('seed', 'none')")
        con.close()
        procs = [subprocess.Popen([sys.executable, "-c", code, catalog, str(data), who, mode],
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
                 for who in ("A", "B")]
        outs = [p.communicate(timeout=120)[0].strip().splitlines()[-1][:140] for p in procs]
        con = lake(catalog, data)
        rows = con.execute("SELECT count(*), count(*) FILTER (WHERE k = 'same') FROM t").fetchone()
        con.close()
        print(f"  {mode}: A {outs[0]!r}; B {outs[1]!r}; rows {rows[0] if rows else '?'}, "
              f"rows of key 'same' {rows[1] if rows else '?'}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg_tool(name: str) -> str | None:
    for d in PG_BIN:
        if (d / name).exists():
            return str(d / name)
    return shutil.which(name)


def run_as_owner(cmd: list[str], owner: str | None) -> None:
    """Run a PostgreSQL tool, as an unprivileged user when we are root (initdb refuses root)."""
    if owner:
        cmd = ["runuser", "-u", owner, "--", *cmd]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def main() -> None:
    print(f"duckdb {duckdb.__version__}")
    for name, package in PACKAGES.items():
        try:
            print(f"  {name}: {extension_file(package)}")
        except ImportError:
            sys.exit(f"missing the package {package.replace('_', '-')} (pip install it, ==1.5.5)")
    with tempfile.TemporaryDirectory(prefix="ducklake-probe-") as tmp:
        root = Path(tmp)
        print("local-file catalog: schema")
        probe_schema(str(root / "meta.ducklake"), root / "local-data")
        initdb, pg_ctl = pg_tool("initdb"), pg_tool("pg_ctl")
        if not (initdb and pg_ctl):
            print("PostgreSQL catalog: skipped (no initdb / pg_ctl found)")
            return
        owner = "postgres" if os.geteuid() == 0 else None
        pgdir = root / "pg"
        pgdir.mkdir()
        (root / "pw").write_text(PASSWORD)
        os.chmod(tmp, 0o755)
        if owner:
            uid = pwd.getpwnam(owner).pw_uid
            os.chown(pgdir, uid, -1)
        port = free_port()
        run_as_owner([initdb, "-D", str(pgdir / "data"), "-U", "newsflow", "--auth=scram-sha-256",
                      f"--pwfile={root / 'pw'}", "-E", "UTF8"], owner)
        run_as_owner([pg_ctl, "-D", str(pgdir / "data"), "-w", "-l", str(pgdir / "log"), "-o",
                      f"-c listen_addresses=127.0.0.1 -p {port} -k {pgdir}", "start"], owner)
        try:
            env = {**os.environ, "PGPASSWORD": PASSWORD}
            os.environ["PGPASSWORD"] = PASSWORD
            catalog = f"postgres:dbname=postgres host=127.0.0.1 port={port} user=newsflow"
            print("PostgreSQL catalog: schema")
            probe_schema(catalog, root / "pg-data")
            print("PostgreSQL catalog: two writers at once")
            start = time.monotonic()
            probe_concurrency(catalog, root / "pg-data", env)
            print(f"  ({time.monotonic() - start:.1f} s)")
            print("local-file catalog: two writers at once")
            probe_concurrency(str(root / "meta.ducklake"), root / "local-data", env)
        finally:
            run_as_owner([pg_ctl, "-D", str(pgdir / "data"), "-m", "fast", "stop"], owner)


if __name__ == "__main__":
    main()
