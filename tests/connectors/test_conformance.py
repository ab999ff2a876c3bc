"""One suite for every registered connector (and the FakeConnector): the shared contract."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from connectors import registry
from core.connections import validate_config, validate_mapping
from core.contract import SURFACES, Connector, Intent
from core.secrets import secret_field_names
from tests.fakes import FakeConnector

ROOT = Path(__file__).resolve().parents[2]
HARNESSES = {"file": "tests.connectors.file.harness:FileHarness",
             "gsheets": "tests.connectors.gsheets.harness:GSheetsHarness",
             "jira": "tests.connectors.jira.harness:JiraHarness"}
SHAPE = ("__init__.py", "config.py", "client.py", "sync.py", "writeback.py", "mapping.py",
         "README.md")
SECRET_WORDS = ("token", "secret", "password", "key")


class FakeHarness:
    sdk_modules: tuple[str, ...] = ()

    def __init__(self, tmp_path: Path) -> None:
        from tests.fakes import FakeTool

        self.tool = FakeTool()

    def config(self) -> dict[str, Any]:
        return {"items": 8}

    def mapping(self) -> dict[str, Any]:
        return {"id": "key"}

    def targets(self) -> list[str]:
        return ["F-1", "F-2"]

    def count_written(self, target: str) -> int:
        return int(target in self.tool.fields)


KINDS = [*sorted(registry.available()), "fake"]


def _factory(kind: str) -> Any:
    return FakeConnector if kind == "fake" else registry.get(kind)


def _harness(kind: str, tmp_path: Path) -> Any:
    if kind == "fake":
        return FakeHarness(tmp_path)
    assert kind in HARNESSES, f"connector {kind} has no conformance harness in HARNESSES"
    module, _, name = HARNESSES[kind].partition(":")
    return getattr(importlib.import_module(module), name)(tmp_path)


def _build(kind: str, harness: Any) -> Connector:
    factory = _factory(kind)
    config = validate_config(factory, harness.config())
    if kind == "fake":
        return FakeConnector(config, harness.mapping(), tool=harness.tool)
    return factory(config, harness.mapping())  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", KINDS)
def test_config_model_is_documented_and_secrets_are_secretstr(kind: str) -> None:
    model = _factory(kind).config_model
    secrets = set(secret_field_names(model))
    for name, field in model.model_fields.items():
        assert field.description, f"{kind}.{name} has no description"
        if any(w in name for w in SECRET_WORDS):
            assert name in secrets, f"{kind}.{name} looks secret but is not SecretStr"
    for name in secrets:
        assert any(w in name for w in SECRET_WORDS), f"secret {name} is not named as one"
        assert model.model_fields[name].annotation in (SecretStr, SecretStr | None)
    schema = model.model_json_schema()
    assert schema["type"] == "object"


@pytest.mark.parametrize("kind", KINDS)
def test_contract_attributes(kind: str) -> None:
    factory = _factory(kind)
    assert factory.name == kind and factory.title
    assert factory.capabilities and factory.capabilities <= set(SURFACES)
    assert any(f.name == "id" for f in factory.mapping_fields)


@pytest.mark.parametrize("kind", KINDS)
def test_pull_is_deterministic_and_maps_onto_the_core_model(kind: str, tmp_path: Path) -> None:
    harness = _harness(kind, tmp_path)
    validate_mapping(_factory(kind), harness.mapping())
    connector = _build(kind, harness)
    assert isinstance(connector, Connector)
    first = [i for b in connector.pull(None) for i in b.items]
    second = [i for b in connector.pull(None) for i in b.items]
    assert first and first == second
    ids = [i.external_id for i in first]
    assert len(ids) == len(set(ids))
    assert set(harness.targets()) <= set(ids)
    for item in first:
        assert item.status in ("open", "done", "cancelled")
        for value in (item.planned_due, item.actual_end, item.estimated_at):
            assert value is None or value.utcoffset() is not None


@pytest.mark.parametrize("kind", KINDS)
def test_install_is_idempotent_and_health_is_plain(kind: str, tmp_path: Path) -> None:
    connector = _build(kind, _harness(kind, tmp_path))
    connector.install()
    second = connector.install()
    assert second.created == []
    health = connector.check()
    assert health.ok and health.message


@pytest.mark.parametrize("kind", KINDS)
def test_write_back_twice_leaves_one_object(kind: str, tmp_path: Path) -> None:
    harness = _harness(kind, tmp_path)
    connector = _build(kind, harness)
    payload = {"forecast_p80": 9.5, "insight": "runs over", "delta": None}
    intents = [Intent(n, t, "fields", payload) for n, t in enumerate(harness.targets(), 1)]
    for _ in range(2):
        results = connector.deliver(intents)
        assert all(r.ok for r in results), results
    for target in harness.targets():
        assert harness.count_written(target) == 1


@pytest.mark.parametrize("kind", sorted(registry.available()))
def test_package_shape_and_readme_documents_every_surface(kind: str) -> None:
    pkg = ROOT / "connectors" / kind
    for name in SHAPE:
        assert (pkg / name).is_file(), f"connectors/{kind}/{name} is missing"
    readme = (pkg / "README.md").read_text()
    for surface in registry.get(kind).capabilities:
        assert surface in readme, f"connectors/{kind}/README.md does not document {surface}"
    for name in registry.get(kind).config_model.model_fields:
        assert f"`{name}`" in readme, f"connectors/{kind}/README.md does not document {name}"


@pytest.mark.parametrize("kind", sorted(registry.available()))
def test_importing_a_connector_does_not_import_its_sdk(kind: str, tmp_path: Path) -> None:
    sdk = _harness(kind, tmp_path).sdk_modules
    code = (f"import sys, connectors.{kind}; bad = [m for m in {sdk!r} if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_broken_plugin_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenEntryPoint:
        name = "broken"

        def load(self) -> Any:
            raise ImportError("no module named broken_plugin")

    monkeypatch.setattr(registry, "entry_points", lambda group: [BrokenEntryPoint()])
    with pytest.warns(UserWarning, match="broken"):
        found = registry.available()
    assert "file" in found
