"""A third-party connector, pip-installed from its own source into a temporary directory, is
found through the `learnloop.connectors` entry point and passes the connector kit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SAMPLE = Path(__file__).resolve().parent / "sample_plugin"
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    return subprocess.run(args, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)


def test_a_pip_installed_plugin_is_registered_and_passes_the_kit(tmp_path: Path) -> None:
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--no-build-isolation", "--target", str(site), str(SAMPLE)],
        capture_output=True, text=True, timeout=120)
    assert installed.returncode == 0, installed.stderr
    assert (site / "learnloop_sample" / "writeback.py").is_file()

    found = _run([sys.executable, "-c", (
        "import json, connectors.registry as r; f = r.available()['board'];"
        "import learnloop_sample as m;"
        "print(json.dumps([f.__name__, f.__module__, m.__file__, sorted(r.available())]))")],
        site, tmp_path)
    assert found.returncode == 0, found.stderr
    name, module, where, kinds = json.loads(found.stdout)
    assert (name, module) == ("BoardConnector", "learnloop_sample")
    assert Path(where).is_relative_to(site)  # the installed copy, not the source tree
    assert {"board", "file", "gsheets", "jira"} <= set(kinds)

    kit = SAMPLE / "kit"
    result = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   "-p", "no:xdist", f"--rootdir={kit}",
                   f"--confcutdir={kit}", "-c", str(SAMPLE / "pyproject.toml"),
                   str(kit / "conformance_kit.py")], site, tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "9 passed" in result.stdout, result.stdout[-2000:]
