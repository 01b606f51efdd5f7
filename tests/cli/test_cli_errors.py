"""The CLI's one-line errors print the message as written, brackets included."""

from __future__ import annotations

import os
from pathlib import Path

from tests.cli.conftest import run_cli


def test_a_config_error_keeps_its_toml_table_name(tmp_path: Path) -> None:
    bad = tmp_path / "sources.toml"
    bad.write_text('fetch = 1\n[[sources]]\nname = "a"\npublisher = "A"\nkind = "original"\n'
                   'domains = ["a.example"]\n')
    done = run_cli("sources", "--sources", str(bad), "--db", str(tmp_path / "x.duckdb"))
    assert done.returncode == 1
    err = " ".join(done.stderr.split())
    assert str(bad) in err and "written [fetch]" in err, err


def test_a_bad_setting_is_one_line_naming_the_variable() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")}
    done = run_cli("sql", "SELECT 1", env={**env, "NEWSFLOW_DB_WAIT": "soon"})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [
        "error: $NEWSFLOW_DB_WAIT: 'soon': expected a number of seconds"], done.stderr
