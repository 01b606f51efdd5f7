"""The temporary local Prefect API of CLI runs: started on demand, answering, gone at exit."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import requests

from newsflow import local_api

SCRIPT = """
import sys
import requests
from newsflow import local_api
url = local_api.start()
print(url, flush=True)
assert requests.get(url + "/health", timeout=5).json() is True
assert "prefect.server.api.server" not in sys.modules  # the server's code stays in its process
"""


def test_local_api_answers_and_stops_with_the_process(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    done = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    url = done.stdout.split()[0]
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
    try:  # stopped at exit: nothing listens on its port any more
        requests.get(url + "/health", timeout=2)
        answered = True
    except requests.ConnectionError:
        answered = False
    assert not answered, f"{url} still answers after its process ended"


WARM = """
import gc
from newsflow.runtime import warm_import
before = gc.get_freeze_count()
warm_import(1)  # one worker: no forkserver to start
import sys
assert "flows.import_warc" in sys.modules and "numpy" in sys.modules
print(before, gc.get_freeze_count())
"""


def test_an_import_readies_its_modules_and_freezes_the_start_up_heap() -> None:
    # Frozen, the objects loaded at start-up are skipped by every later full collection.
    done = subprocess.run([sys.executable, "-c", WARM], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    before, after = map(int, done.stdout.split())
    assert before == 0 and after > 100_000


WARM_PREFECT = """
import sys
from prefect import flow
from newsflow.runtime import warm_prefect
@flow
def imported(paths: list[str], db: str | None = None) -> None: ...
if sys.argv[1] == "warm":
    warm_prefect()
before = set(sys.modules)
imported.serialize_parameters({"paths": ["a.warc.gz"], "db": None})
print(len(set(sys.modules) - before))
"""


def test_prefects_first_run_with_parameters_finds_its_modules_loaded() -> None:
    # Prefect serializes a run's parameters with FastAPI, imported on first use: the CLI loads
    # it while its API server starts, not between the flow's start and its first batch.
    def new_modules(arg: str) -> int:
        done = subprocess.run([sys.executable, "-c", WARM_PREFECT, arg], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return int(done.stdout.split()[-1])

    assert new_modules("cold") > 20 and new_modules("warm") == 0


KILLED = """
import os, signal
from newsflow import local_api
print(local_api.start(), flush=True)
os.kill(os.getpid(), signal.SIGKILL)  # no atexit handler runs
"""


def test_the_local_api_stops_when_the_cli_is_killed(tmp_path: Path) -> None:
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    # Not run(capture_output=True): an orphaned server would hold the pipes open until timeout.
    cli = subprocess.Popen([sys.executable, "-c", KILLED], env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    assert cli.stdout is not None
    url = cli.stdout.readline().strip()
    assert cli.wait(timeout=180) == -9 and url.startswith("http://127.0.0.1:")
    cli.stdout.close()
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/health", timeout=1)
        except requests.ConnectionError:
            return  # the orphaned server has stopped
        time.sleep(0.2)
    raise AssertionError(f"the local API at {url} outlived the killed CLI")


def test_a_cli_run_records_every_task_run_in_the_prefect_database(tmp_path: Path) -> None:
    # The temporary server batches the task-run recorder's writes (local_api.RECORDER_BATCH);
    # the rows still written at its shutdown must be there, each run in its final state.
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "home")}
    env.pop("PREFECT_API_URL", None)
    env.pop(local_api.RECORDER_BATCH_ENV, None)
    done = subprocess.run([sys.executable, "-m", "newsflow", "demo", "--db", str(tmp_path / "d.duckdb")],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    with closing(sqlite3.connect(tmp_path / "home" / "prefect.db")) as con:
        flows = con.execute("SELECT state_type FROM flow_run").fetchall()
        tasks = con.execute("SELECT name, state_type FROM task_run").fetchall()
        states = con.execute("SELECT count(*) FROM task_run_state").fetchone()
    assert flows == [("COMPLETED",)]
    names = {name.rsplit("-", 1)[0] for name, _ in tasks}
    assert {"extract", "register-sources", "dedupe-prepare", "dedupe-match", "dedupe-write"} <= names, names
    assert {state for _, state in tasks} == {"COMPLETED"}
    assert states == (3 * len(tasks),)  # pending, running, completed: none lost in the batching
