"""The installed package holds every module of the source tree (pip install ., not only -e)."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[2]


def test_every_source_package_is_installed() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = config["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = set(find_packages(str(ROOT), include=include))
    on_disk = {
        ".".join(d.relative_to(ROOT).parts)
        for top in ("newsflow", "tasks", "flows", "storage")
        for d in [ROOT / top, *(ROOT / top).rglob("*")]
        if d.is_dir() and d.name != "__pycache__" and any(d.iterdir())
    }
    assert on_disk, "no source packages found"
    assert on_disk <= installed, f"not installed by pip install .: {sorted(on_disk - installed)}"
