"""Small, plainly named errors that say what is at fault and whether a retry can help."""

from __future__ import annotations


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
