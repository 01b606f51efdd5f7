"""The temporary local Prefect API of CLI runs: started on demand, answering, gone at exit."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import requests

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
