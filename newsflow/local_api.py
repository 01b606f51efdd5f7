"""A temporary local Prefect API for CLI runs when no server is configured.

Prefect would start the same server itself (its "ephemeral" mode), but to do so the CLI process
imports the whole server application (FastAPI, SQLAlchemy, the ORM models): memory the flow
process would carry for code that only runs in the server's own process (docs/performance.md).
This starts that server the way Prefect does (its uvicorn app factory, the UI off, marked
ephemeral), points this process and its children at it, and stops it when the process exits.
"""

from __future__ import annotations

import atexit
import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from newsflow.errors import NewsflowError

PORTS = range(8000, 9000)  # Prefect's own range for its ephemeral server
_PORT_IN_USE = 3  # uvicorn's exit status when it cannot bind
# Task-run state events the server's task-run recorder writes per transaction. Prefect's default
# is 1: three SQLite transactions per task run. Batched, the same rows are written (at 100
# events, every flush_interval of 5 s, and at shutdown) for much less of the server's CPU, on the
# cores the extraction workers need. The server has no UI, so nobody watches those rows land live.
RECORDER_BATCH_ENV = "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_BATCH_SIZE"
RECORDER_BATCH = "100"


def _free_port() -> int:
    """A port of PORTS nothing listens on right now."""
    for _ in range(50):
        port = random.choice(PORTS)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise NewsflowError(f"no free port in {PORTS.start}-{PORTS.stop - 1} for a local Prefect API")


# Runs uvicorn's command line in the server process, which first asks Linux to stop it when its
# parent dies: the atexit stop never runs for a CLI killed outright (SIGKILL, the OOM killer), and
# the orphaned server would hold its memory and a port until someone noticed. Elsewhere, no-op.
# Linux signals when the *thread* that started the server ends: start() runs on the CLI's main
# thread (its commands call it before any flow), so that is the process's end.
_BOOT = """
import ctypes, os, runpy, signal, sys
parent = int(sys.argv.pop(1))
try:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
except (OSError, AttributeError):
    pass
if os.getppid() != parent:  # the parent died before prctl took effect
    sys.exit(0)
sys.argv[0] = "uvicorn"
runpy.run_module("uvicorn", run_name="__main__", alter_sys=True)
"""


def _launch(port: int) -> subprocess.Popen[bytes]:
    """The server process: Prefect's API app under uvicorn, as Prefect's ephemeral mode runs it."""
    import prefect

    env = {**os.environ, "PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
           "PREFECT__SERVER_FINAL": "1"}
    env.setdefault(RECORDER_BATCH_ENV, RECORDER_BATCH)
    env.pop("PREFECT_API_URL", None)
    return subprocess.Popen(
        [sys.executable, "-c", _BOOT, str(os.getpid()),
         "--app-dir", str(Path(prefect.__file__).parent.parent),
         "--factory", "prefect.server.api.server:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "error", "--lifespan", "on"],
        env=env, stdin=subprocess.DEVNULL)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the server and reap it (killed if it has not stopped within 5 s)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _healthy(url: str) -> bool:
    import requests

    try:
        return requests.get(url + "/health", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def start(timeout: float | None = None, meanwhile: Callable[[], object] | None = None) -> str:
    """Start the server, wait until it answers, and return its API URL.

    meanwhile runs once the server process is launched, before waiting for it: the server takes
    seconds to start (mostly on the other core), which the caller's own imports can use.

    The caller points Prefect at the URL; the server is stopped at interpreter exit, after the
    flushes of Prefect's log and event workers (atexit runs handlers in reverse order, and
    theirs are registered later, when the first flow runs).
    """
    if timeout is None:
        timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS") or 90)
    deadline = time.monotonic() + timeout
    while True:
        port = _free_port()
        proc = _launch(port)
        atexit.register(_stop, proc)
        url = f"http://127.0.0.1:{port}/api"
        if meanwhile is not None:
            meanwhile()
            meanwhile = None
        while proc.poll() is None and time.monotonic() < deadline:
            if _healthy(url):
                return url
            time.sleep(0.1)
        if proc.returncode == _PORT_IN_USE and time.monotonic() < deadline:
            continue  # another process took the port between the check and the bind
        _stop(proc)
        state = f"exited with status {proc.returncode}" if proc.returncode is not None \
            else f"did not answer within {timeout:.0f} s"
        raise NewsflowError(f"the local Prefect API server on port {port} {state}; set "
                            "PREFECT_API_URL to a running server (`prefect server start`) instead")
