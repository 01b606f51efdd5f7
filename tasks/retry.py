"""Which failed Prefect task runs are retried: only those whose error says a retry can help."""

from __future__ import annotations

from typing import Any

from prefect import Task
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from newsflow.errors import TransientError
from storage.db import transient_db_error


def retryable(exc: BaseException) -> bool:
    """A TransientError (a lock held, a server busy), or a DuckDB lock or I/O error."""
    return isinstance(exc, TransientError) or transient_db_error(exc)


def retry_if_transient(task: Task[..., Any], task_run: TaskRun, state: State[Any]) -> bool:
    """Prefect's retry_condition_fn: retry a task run that raised a retryable error, only."""
    # The engine hands over Failed(data=exception) for a task that raised.
    return isinstance(state.data, BaseException) and retryable(state.data)
