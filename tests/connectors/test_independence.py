"""The independence contract covers a connector nobody listed: one that imports another is caught."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINT = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(tree / "pyproject.toml")],
                          cwd=tree, capture_output=True, text=True, timeout=300,
                          env={"PATH": str(LINT.parent), "PYTHONPATH": str(tree)})


def test_a_new_connector_importing_another_breaks_the_contract(tmp_path: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "static")
    for package in ("core", "connectors", "webapp"):
        shutil.copytree(ROOT / package, tmp_path / package, ignore=skip)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    newtool = tmp_path / "connectors" / "newtool"
    newtool.mkdir()
    (newtool / "__init__.py").write_text('"""A connector nobody listed."""\n')
    kept = _lint(tmp_path)
    assert kept.returncode == 0, kept.stdout + kept.stderr
    (newtool / "sync.py").write_text('"""Reuses another connector."""\n\n'
                                     "from connectors.file import mapping  # noqa: F401\n")
    broken = _lint(tmp_path)
    assert broken.returncode != 0, broken.stdout
    assert "Connectors are independent of each other BROKEN" in broken.stdout
    assert "connectors.newtool.sync -> connectors.file.mapping" in broken.stdout
