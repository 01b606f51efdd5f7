"""Hammer one DuckDB file with writer processes taking turns; report committed rows lost.

    python bench/durability.py [--procs 3] [--turns 300]

What it found, and why pyproject.toml pins `duckdb<2`: docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
WORKER = """
import os, sys
from storage.db import reader, writer
db, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with writer(db, wait=300) as con:
        con.execute("CREATE TABLE IF NOT EXISTS turns (pid INTEGER, i INTEGER)")
        con.execute("INSERT INTO turns VALUES (?, ?)", [os.getpid(), i])
    with reader(db, wait=300) as con:
        con.execute("SELECT count(*) FROM turns").fetchone()
print(os.getpid())
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--procs", type=int, default=3)
    ap.add_argument("--turns", type=int, default=300)
    args = ap.parse_args()
    db = os.path.join(tempfile.mkdtemp(prefix="newsflow-durability-"), "turns.duckdb")
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, db, str(args.turns)], cwd=REPO,
                              stdout=subprocess.PIPE, text=True) for _ in range(args.procs)]
    pids = [int(p.communicate()[0].strip()) for p in procs]
    rows = dict(duckdb.connect(db, read_only=True).execute(
        "SELECT pid, count(DISTINCT i) FROM turns GROUP BY pid").fetchall())
    lost = sum(args.turns - rows.get(pid, 0) for pid in pids)
    print(f"duckdb {duckdb.__version__}: {args.procs} processes x {args.turns} turns, "
          f"{lost} committed rows lost")
    return 1 if lost else 0


if __name__ == "__main__":
    raise SystemExit(main())
