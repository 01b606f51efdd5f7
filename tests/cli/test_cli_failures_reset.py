"""`newsflow failures reset`: failed URLs due again, counted; unknown names are errors."""

from __future__ import annotations

from pathlib import Path

from newsflow.types import Failure
from storage import writes
from storage.db import reader, writer
from storage.reads import all_known_urls
from tests.cli.conftest import run_cli


def _db(tmp_path: Path) -> str:
    db = str(tmp_path / "n.duckdb")
    with writer(db) as con:
        writes.record_failures(con, [
            Failure(url="https://thehill.com/a", source="thehill", stage="fetch",
                    reason="http_403", status=403),
            Failure(url="https://thehill.com/b", source="thehill", stage="fetch",
                    reason="http_404", status=404),
            Failure(url="https://kxan.com/c", source="kxan", stage="fetch", reason="http_403",
                    status=403)])
    return db


def _known(db: str) -> set[str]:
    with reader(db) as con:
        return set(all_known_urls(con))


def test_reset_by_source_and_reason(tmp_path: Path) -> None:
    db = _db(tmp_path)
    assert len(_known(db)) == 3  # permanent failures: never fetched again
    r = run_cli("failures", "reset", "--source", "thehill", "--reason", "http_403", "--db", db)
    assert r.returncode == 0, r.stderr
    assert "1 failed URL(s) of source thehill with reason http_403 are due again" in r.stdout
    assert _known(db) == {"https://thehill.com/b", "https://kxan.com/c"}
    with reader(db) as con:
        assert con.execute("SELECT attempts, transient FROM failures WHERE url = "
                           "'https://thehill.com/a'").fetchone() == (0, True)
    r = run_cli("failures", "reset", "--db", db)
    assert r.returncode == 0 and "3 failed URL(s) are due again" in r.stdout
    assert _known(db) == set()


def test_unknown_names_are_errors(tmp_path: Path) -> None:
    db = _db(tmp_path)
    r = run_cli("failures", "reset", "--source", "nosuchsite", "--db", db)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert "'nosuchsite': no such source in" in r.stderr and "sources.toml" in r.stderr
    r = run_cli("failures", "reset", "--reason", "http_999", "--db", db)
    assert r.returncode == 1 and "http_999" in r.stderr and "http_403, http_404" in r.stderr
    r = run_cli("failures", "reset", "--reason", "robots", "--db", db)
    assert r.returncode == 1 and "'robots': not a failure reason" in r.stderr
    assert "robots_disallowed" in r.stderr and "http_NNN" in r.stderr
    r = run_cli("failures", "reset", "--db", str(tmp_path / "missing.duckdb"))
    assert r.returncode == 1 and "missing.duckdb" in r.stderr and "Traceback" not in r.stderr
    assert len(_known(db)) == 3  # nothing was reset by the failed commands
