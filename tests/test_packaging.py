"""The wheel ships exactly core, connectors and webapp; the layers hold; imports stay cheap."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_ships_exactly_three_packages(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT, check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("learnloop-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"core", "connectors", "webapp"}
    assert "core/migrations/versions/0001_initial_schema.py" in names
    assert "core/migrations/env.py" in names
    assert "connectors/file/README.md" in names
    assert "core/testing/conformance.py" in names  # the connector kit ships
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "learnloop = webapp.cli:main" in zipfile.ZipFile(wheel).read(entry).decode()


def test_import_layers_hold() -> None:
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 2 kept, 0 broken" in result.stdout


def test_cli_import_does_not_load_tool_sdks() -> None:
    code = (
        "import sys, webapp.cli, connectors.registry as r; r.available();"
        "bad = [m for m in ('openpyxl','jira','atlassian','hubspot','simple_salesforce',"
        "'gspread','fastapi') if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_connector_kit_imports_without_pytest() -> None:
    code = "import sys, core.testing; sys.exit(1 if 'pytest' in sys.modules else 0)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, "importing core.testing imported pytest" + result.stderr
