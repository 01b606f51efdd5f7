"""Run a command as the user would and measure it: wall time, timed output lines, peak tree RSS."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


@dataclass(kw_only=True)
class Measured:
    """One finished command: exit status, wall seconds, peak RSS of its whole tree, timed lines."""

    returncode: int
    wall: float
    peak_rss_mb: float  # sum of the tree's RSS: shared pages counted once per process
    lines: list[tuple[float, str]] = field(default_factory=list)
    peak_pss_mb: float = 0.0  # sum of PSS: shared pages split, the tree's real footprint
    peak_rss_own_mb: float = 0.0  # RSS sum without Prefect's ephemeral API server process
    # (seconds after start, RSS MB per role) per sample: which process peaks when (ROLES)
    timeline: list[tuple[float, dict[str, float]]] = field(default_factory=list)

    def first(self, needle: str) -> float | None:
        """Seconds after start of the first output line containing needle."""
        return next((t for t, line in self.lines if needle in line), None)

    def last(self, needle: str) -> float | None:
        """Seconds after start of the last output line containing needle."""
        return next((t for t, line in reversed(self.lines) if needle in line), None)

    @property
    def output(self) -> str:
        return "\n".join(line for _, line in self.lines)

    def role_peaks(self, start: float = 0.0, end: float = float("inf")) -> dict[str, float]:
        """Peak RSS MB of each role (and of the tree, "total") over samples in [start, end)."""
        peaks: dict[str, float] = {}
        for t, roles in self.timeline:
            if start <= t < end:
                for role, mb in roles.items():
                    peaks[role] = max(peaks.get(role, 0.0), mb)
        return peaks


# main: the CLI process; server: Prefect's ephemeral API (uvicorn); forkserver and workers: the
# extraction pool (workers are the forkserver's children, with its command line).
ROLES = ("total", "main", "server", "forkserver", "workers", "other")


def _role(p: object, root: int) -> str:
    """Which part of a newsflow process tree p (a psutil.Process) is."""
    import psutil

    assert isinstance(p, psutil.Process)
    if p.pid == root:
        return "main"
    cmd = " ".join(p.cmdline())
    if "uvicorn" in cmd or "prefect.server.api.server" in cmd:
        return "server"
    if "forkserver" in cmd:
        return "forkserver" if p.ppid() == root else "workers"
    return "other"


def _tree_memory(pid: int) -> tuple[int, int, int, dict[str, float]]:
    """(RSS, PSS, RSS without the Prefect API server) bytes of pid and all its descendants,
    and RSS MB per role (ROLES)."""
    try:
        import psutil
    except ImportError:
        rss = _proc_tree_rss(pid)
        return rss, rss, rss, {"total": rss / 2**20}
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0, 0, {}
    rss = pss = own = 0
    roles: dict[str, float] = {}
    for p in procs:
        try:
            info = p.memory_full_info()
            role = _role(p, pid)
        except psutil.Error:  # a worker that just exited
            continue
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
        own += 0 if role == "server" else info.rss
        roles[role] = roles.get(role, 0.0) + info.rss / 2**20
    roles["total"] = rss / 2**20
    return rss, pss, own, roles


def _proc_tree_rss(pid: int) -> int:
    """The /proc fallback of _tree_rss: walk children through /proc/<pid>/task/*/children."""
    total, todo = 0, [pid]
    page = os.sysconf("SC_PAGE_SIZE")
    while todo:
        p = todo.pop()
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * page
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            continue
    return total


def run_measured(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, cwd: Path | None = None,
                 timeout: float = 1800, memory: bool = False, poll: float = 0.2) -> Measured:
    """Run cmd to completion, timestamping each output line; with memory, sample the tree's RSS.

    Sample memory only where memory is the figure: reading every process's smaps each `poll`
    seconds costs kernel CPU on the cores the import needs, and more with more processes (the
    Prefect API server's, on a flow's side only), so it would skew a timed run.
    """
    full_env = {**os.environ, **(env or {})}
    start = time.perf_counter()
    proc = subprocess.Popen(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=full_env, cwd=cwd or REPO, bufsize=1, errors="replace")
    peak = [0, 0, 0]
    timeline: list[tuple[float, dict[str, float]]] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            t = time.perf_counter() - start
            *sums, roles = _tree_memory(proc.pid)
            for i, value in enumerate(sums):
                peak[i] = max(peak[i], value)
            if roles:
                timeline.append((t, roles))
            done.wait(poll)

    sampler = threading.Thread(target=sample, daemon=True) if memory else None
    if sampler:
        sampler.start()
    lines: list[tuple[float, str]] = []
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            lines.append((time.perf_counter() - start, line.rstrip("\n")))
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        done.set()
        if sampler:
            sampler.join()
    return Measured(returncode=proc.returncode, wall=time.perf_counter() - start,
                    peak_rss_mb=peak[0] / 2**20, peak_pss_mb=peak[1] / 2**20,
                    peak_rss_own_mb=peak[2] / 2**20, lines=lines, timeline=timeline)


def check(m: Measured, what: str) -> Measured:
    """m, or a clear error with the command's last output lines when it failed."""
    if m.returncode != 0:
        tail = "\n".join(line for _, line in m.lines[-30:])
        raise RuntimeError(f"{what} exited {m.returncode}:\n{tail}")
    return m
