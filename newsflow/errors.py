"""Small, plainly named errors that say what is at fault and whether a retry can help."""

from __future__ import annotations

from newsflow.reasons import is_transient


class NewsflowError(Exception):
    """Base of every error newsflow reports to a user (the CLI prints it without a traceback)."""


class ConfigError(NewsflowError):
    """A sources.toml that cannot be used: names the file, the source and the key."""

    def __init__(self, path: str, message: str, *, source: str | None = None, key: str | None = None):
        self.path, self.source, self.key = path, source, key
        where = path
        if source:
            where += f": source {source!r}"
        if key:
            where += f": key {key!r}"
        super().__init__(f"{where}: {message}")


class InputFileError(NewsflowError):
    """A file given on the command line (WARC, sources) that is missing or unreadable."""

    def __init__(self, path: str, message: str):
        self.path = path
        super().__init__(f"{path}: {message}")


class TransientError(NewsflowError):
    """Something that may succeed if tried again later (lock held, server busy)."""


class FetchError(NewsflowError):
    """One failed fetch attempt: its reason (a Reason or http_NNN), detail and HTTP status.

    The fetcher records it as a Failure; it never escapes fetch(). retry_now says whether the
    fetcher tries again within the run (by default when the reason is transient).
    """

    def __init__(self, reason: str, detail: str = "", *, status: int | None = None,
                 retry_now: bool | None = None) -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail, self.status = reason, detail, status
        self.retry_now = self.transient if retry_now is None else retry_now

    @property
    def transient(self) -> bool:
        """Whether a later fetch of the URL may succeed."""
        return is_transient(self.reason)


class DatabaseLockedError(TransientError):
    """The DuckDB file is held by another process."""

    def __init__(self, path: str, holder: str, waited: float):
        self.path, self.holder, self.waited = path, holder, waited
        super().__init__(
            f"{path}: the database is held by another process ({holder}); "
            f"gave up after waiting {waited:.0f}s. DuckDB allows one writer, and an open "
            "read-only session blocks it too: close other sessions on this file and retry."
        )


class DatabaseMemoryError(NewsflowError):
    """DuckDB ran out of memory even after the one retry with a larger cap."""

    def __init__(self, operation: str, limit: str, detail: str):
        self.operation = operation
        super().__init__(
            f"{operation}: DuckDB ran out of memory again with the larger cap ({detail}). "
            f"Set NEWSFLOW_DB_MEMORY to a larger cap than {limit} and run it again.")
