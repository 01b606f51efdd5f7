"""newsflow's own lock on a `<db>.lock` sidecar: an flock that queues its processes on one
DuckDB file (exclusive for writers, shared for readers), shared by a process's threads."""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import threading
import time
from pathlib import Path


class Held(Exception):
    """The sidecar lock stayed taken until the deadline; holder names who has it."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


class _FileLock:
    """One process's hold on a `<db>.lock` sidecar: an fcntl.flock shared by its threads.

    flock belongs to an open file description, so two threads opening the file separately would
    block each other like two processes, and a thread re-entering (a reader inside a reader)
    would deadlock itself. So the process takes the OS lock once and counts its holders: threads
    share it when both read; a writer waits for the process's other threads to finish, which also
    spares DuckDB's in-process error for a read-only and a read-write connection at once.
    """

    def __init__(self, path: str):
        self.path = path
        self.cond = threading.Condition()
        self.holders: dict[int, int] = {}  # thread id -> nesting depth
        self.exclusive = False
        self.busy = False  # a thread is taking the OS lock for the process: the others wait
        self.fd: int | None = None

    def acquire(self, exclusive: bool, deadline: float) -> int:
        """Hold the lock for the calling thread; returns its id for release()."""
        me = threading.get_ident()
        with self.cond:
            while True:
                if me in self.holders:  # nested in this thread: already held; DuckDB decides
                    self.holders[me] += 1
                    return me
                if self.holders and not exclusive and not self.exclusive:
                    self.holders[me] = 1  # readers of one process share its shared lock
                    return me
                if not self.holders and not self.busy:
                    self.busy = True
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    raise Held(f"another thread of this process, PID {os.getpid()}")
                self.cond.wait(min(left, 0.05))
        try:
            fd = _flock(self.path, exclusive, deadline)
        except BaseException:
            with self.cond:
                self.busy = False
                self.cond.notify_all()
            raise
        with self.cond:
            self.busy = False
            self.fd, self.exclusive, self.holders[me] = fd, exclusive, 1
            self.cond.notify_all()
        return me

    def release(self, me: int) -> None:
        """Drop the calling thread's hold; the last one out closes the file (unlocking it)."""
        with self.cond:
            self.holders[me] -= 1
            if self.holders[me]:
                return
            del self.holders[me]
            if not self.holders:
                if self.fd is not None:
                    os.close(self.fd)  # closing the last descriptor releases the flock
                self.fd, self.exclusive = None, False
                self.cond.notify_all()


def _open_lock_file(path: str) -> int | None:
    """The sidecar's descriptor; None where it can neither be created nor opened."""
    try:  # 0o666 less the umask, as DuckDB creates the database file itself
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError:
        pass
    try:  # flock needs no write access: a lock file made by another user still works
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        # A read-only directory (a shipped database, a read-only mount) and no lock file: go
        # without the flock. Such a file has no newsflow writer; DuckDB's own lock and the retry
        # loop still cover outside sessions.
        return None


def _flock(path: str, exclusive: bool, deadline: float) -> int | None:
    """Take flock on path (polled: a blocking flock cannot time out); the open descriptor."""
    fd = _open_lock_file(path)
    if fd is None:
        return None
    op = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    delay = 0.01
    while True:
        try:
            fcntl.flock(fd, op)
            return fd
        except BlockingIOError:
            pass
        except OSError:  # ENOLCK and kin (some network filesystems): no flock, as above
            os.close(fd)
            return None
        if time.monotonic() >= deadline:
            holder = flock_holder(fd)
            os.close(fd)
            raise Held(holder)
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())) * random.uniform(0.5, 1.0))
        delay = min(delay * 2, 0.25)


def flock_holder(fd: int) -> str:
    """Who holds the flock on fd's file: the PID /proc/locks records (Linux), and its name."""
    st = os.fstat(fd)
    dev = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return "another newsflow process"
    for line in lines:
        parts = line.split()
        if "FLOCK" in parts and "->" not in parts and dev in parts:
            pid = parts[parts.index(dev) - 1]
            try:
                name = Path(f"/proc/{pid}/comm").read_text().strip()
            except OSError:
                name = "newsflow"
            return f"{name}, PID {pid}"
    return "another newsflow process"


_LOCKS: dict[str, _FileLock] = {}
_LOCKS_GUARD = threading.Lock()


def lock_for(db: Path) -> _FileLock:
    key = os.path.realpath(f"{db}.lock")  # two spellings of one file share one lock
    with _LOCKS_GUARD:
        return _LOCKS.setdefault(key, _FileLock(key))


def _forget_locks_in_child() -> None:
    """After a fork: the child holds none of its parent's locks.

    Closing the inherited descriptors drops the child's references without unlocking (the lock
    belongs to the open file description, which the parent still has); LOCK_UN here would
    unlock the parent. Fresh objects too: another thread may have held a Condition at the fork.
    """
    global _LOCKS_GUARD
    for lock in _LOCKS.values():
        if lock.fd is not None:
            with contextlib.suppress(OSError):
                os.close(lock.fd)
    _LOCKS.clear()
    _LOCKS_GUARD = threading.Lock()


os.register_at_fork(after_in_child=_forget_locks_in_child)
