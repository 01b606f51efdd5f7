"""Dedupe's pure parts: signatures, verification, reworded alignment, election, batch types
(no Prefect, no DuckDB: tasks.dedupe and its steps run them against the store)."""
