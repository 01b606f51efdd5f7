"""What dedupe's statements share: the batch's temp table, packed string parameters, numpy columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICRO = timedelta(microseconds=1)


def now() -> datetime:
    """The current time, timezone-aware (UTC)."""
    return datetime.now(UTC)


def insert_rows(con: duckdb.DuckDBPyConnection, name: str, columns: dict[str, np.ndarray],
                sql: str, params: list[Any] | None = None) -> None:
    """Run sql with numeric numpy columns registered as view `name`."""
    con.register(name, columns)
    try:
        con.execute(sql, params)
    finally:
        con.unregister(name)


# Strings travel to DuckDB packed into ONE parameter, split in SQL: DuckDB's Python client
# converts a bound list value by value (it retries `import pandas` for every one), and
# register() of an object array pays per value too, while one long string is one value.
# Numbers travel as registered numpy arrays, which DuckDB scans in bulk.
SEP = "\x1f"  # ASCII unit separator: never in ids, URL keys or hashes


def packable(values: Sequence[str | None]) -> bool:
    """Whether values can travel joined by SEP (none holds it)."""
    return not any(v is not None and SEP in v for v in values)


def in_values(values: Sequence[str]) -> tuple[str, Any]:
    """(SQL subquery, parameter) for `x IN <subquery>` over values."""
    if packable(values):
        return "(SELECT unnest(string_split(?, chr(31))))", SEP.join(values)
    return "(SELECT unnest(?))", list(values)  # a value holds the separator: the slow way


def temp_table(con: duckdb.DuckDBPyConnection, name: str, strings: dict[str, Sequence[str | None]],
               numbers: dict[str, np.ndarray] | None = None) -> None:
    """CREATE OR REPLACE TEMP TABLE name (idx, *strings, *numbers): row idx holds value idx of
    every column (None -> NULL; '' is read as NULL too). Temp tables work on read-only
    connections as well."""
    n = len(next(iter(strings.values())))
    inner, outer = ["unnest(range(?::BIGINT))::INTEGER AS idx"], ["idx"]
    params: list[Any] = [n]
    for col, vals in strings.items():
        if packable(vals):
            inner.append(f"unnest(string_split(?, chr(31))) AS {col}")
            params.append(SEP.join("" if v is None else v for v in vals))
        else:
            inner.append(f"unnest(?) AS {col}")
            params.append(list(vals))
        outer.append(f"NULLIF({col}, '') AS {col}")
    # With no rows, string_split('') still yields one '': the idx IS NULL filter drops it.
    select = (f"SELECT {', '.join(outer)} FROM (SELECT {', '.join(inner)}) "
              "WHERE idx IS NOT NULL")
    if not numbers:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS {select}", params)
        return
    con.register(f"{name}_n", {"idx": np.arange(n, dtype=np.int32), **numbers})
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT s.*, n.* EXCLUDE (idx) "
                    f"FROM ({select}) s JOIN {name}_n n USING (idx)", params)
    finally:
        con.unregister(f"{name}_n")


def drop_temp(con: duckdb.DuckDBPyConnection, name: str) -> None:
    """Drop a temp table made by temp_table."""
    con.execute(f"DROP TABLE IF EXISTS {name}")


# A block hash is 16 hex digits (tasks.boilerplate.block_hash); it travels as its uint64 value.
HEX = "lpad(lower(to_hex({})), 16, '0')"


@contextmanager
def batch_view(con: duckdb.DuckDBPyConnection, article_ids: Sequence[str],
               sites: Sequence[str]) -> Iterator[None]:
    """Temp table _batch(idx, article_id, site) of the batch, for the statements below: per-row
    data then travels as numpy integer columns (a page's position in the batch) joined to it."""
    temp_table(con, "_batch", {"article_id": article_ids, "site": sites})
    try:
        yield
    finally:
        drop_temp(con, "_batch")
