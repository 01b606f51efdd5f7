"""`make eval`: generate the labelled set, import it with the real CLI, dedupe, score."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def sh(*args: str, env: dict[str, str]) -> None:
    print("+", " ".join(args), flush=True)
    subprocess.run(args, check=True, env=env)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="work folder (default: build/eval-SEED)")
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = ap.parse_args()
    out = args.out or REPO / "build" / f"eval-{args.seed}"
    out.mkdir(parents=True, exist_ok=True)
    db = out / "eval.duckdb"
    for p in (db, db.with_name(db.name + ".wal")):
        p.unlink(missing_ok=True)
    env = dict(os.environ)
    if not env.get("PREFECT_API_URL"):  # keep throwaway runs out of the user's Prefect database
        env.setdefault("PREFECT_HOME", tempfile.mkdtemp(prefix="newsflow-eval-prefect-"))
    py, cli = sys.executable, str(Path(sys.executable).with_name("newsflow"))
    sh(py, str(HERE / "generate.py"), "--seed", str(args.seed), "--out", str(out), env=env)
    # import-warc runs the dedupe flow at its end; `newsflow dedupe` after it must change nothing.
    sh(cli, "import-warc", str(out / "eval.warc.gz"), "--sources", str(out / "sources.toml"),
       "--db", str(db), env=env)
    sh(cli, "dedupe", "--db", str(db), "--sources", str(out / "sources.toml"), env=env)
    score = [py, str(HERE / "score.py"), "--labels", str(out / "labels.json"), "--db", str(db),
             "--json", str(out / "score.json")] + (["--check"] if args.check else [])
    return subprocess.run(score, env=env).returncode


if __name__ == "__main__":
    raise SystemExit(main())
