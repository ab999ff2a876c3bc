"""The kit runs on every registered connector, from that connector's own tests (and on the
FakeConnector that core, worker and web tests use)."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from connectors import registry
from core.contract import COMMENT, FIELDS, NOTE, TEMPLATE, Connector, Delivery, Intent
from core.testing import check_surface, conformance_tests
from tests.fakes import FakeConnector, FakeTool

ROOT = Path(__file__).resolve().parents[2]


class FakeHarness:
    """The fake tool in memory: its comments and fields are its own state."""

    sdk_modules: tuple[str, ...] = ()

    def __init__(self, tmp_path: Path | None = None) -> None:
        self.tool = FakeTool()

    def build(self, factory: Any) -> Connector:
        from core.connections import validate_config

        connector: Connector = factory(validate_config(factory, self.config()), self.mapping(),
                                       tool=self.tool)
        return connector

    def config(self) -> dict[str, Any]:
        return {"items": 8}

    def mapping(self) -> dict[str, Any]:
        return {"id": "key"}

    def targets(self, surface: str = FIELDS) -> list[str]:
        return ["F-1", "F-2"]

    def count(self, target: str, surface: str) -> int:
        if surface == COMMENT:
            return len(self.tool.comments.get(target, {}))
        if surface == NOTE:
            return len(self.tool.notes.get(target, {}))
        if surface == TEMPLATE:
            return len(self.tool.templates.get(target, {}))
        return int(target in self.tool.fields)

    def read_back(self, target: str, surface: str) -> str:
        if surface == COMMENT:
            return " | ".join(self.tool.comments.get(target, {}).values())
        if surface == NOTE:
            return " | ".join(n.body for n in self.tool.notes.get(target, {}).values())
        if surface == TEMPLATE:
            return " | ".join(str(v) for v in self.tool.templates.get(target, {}).values())
        return str(self.tool.fields.get(target, {}).get("insight", ""))

    def unexpected(self) -> list[str]:
        return []


TestFakeConformance = conformance_tests(FakeConnector, FakeHarness)
del TestFakeConformance.test_package_shape_and_readme_documents_every_surface  # a test double


def _calls_the_kit(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == "conformance_tests"
               for n in ast.walk(tree))


@pytest.mark.parametrize("kind", sorted(registry.available()))
def test_every_registered_connector_runs_the_kit_from_its_own_tests(kind: str) -> None:
    folder = ROOT / "tests" / "connectors" / kind
    modules = sorted(folder.glob("test_*.py"))
    assert any(_calls_the_kit(m) for m in modules), (
        f"tests/connectors/{kind}/ has no test module calling core.testing.conformance_tests")


@pytest.mark.parametrize(("same_ref", "message"), [
    (False, "redelivered comment on F-1 came back as 'c3', not the object first written"),
    (True, "comment on F-1 delivered twice: 2 objects in the tool, not 1")])
def test_the_kit_catches_a_surface_that_duplicates_on_redelivery(
        tmp_path: Path, same_ref: bool, message: str) -> None:
    class Forgetful(FakeConnector):
        """Posts a new comment whenever the outbox lost the comment's id (the old behaviour);
        with `same_ref` it even answers with the first comment's id, so only counting the
        tool's own comments can tell."""

        def _deliver_one(self, intent: Intent) -> Delivery:
            if intent.surface != COMMENT or intent.tool_ref is not None:
                return super()._deliver_one(intent)
            ref = f"c{self.tool.next_comment}"
            self.tool.next_comment += 1
            self.tool.comments.setdefault(intent.target, {})[ref] = str(intent.payload["text"])
            first = next(iter(self.tool.comments[intent.target]))
            return Delivery(intent.id, ok=True, tool_ref=first if same_ref else ref)

    with pytest.raises(AssertionError, match=message):
        check_surface(Forgetful, FakeHarness(tmp_path), COMMENT)


def test_a_broken_plugin_only_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    class BrokenEntryPoint:
        name = "broken"

        def load(self) -> Any:
            raise ImportError("no module named broken_plugin")

    monkeypatch.setattr(registry, "entry_points", lambda group: [BrokenEntryPoint()])
    with pytest.warns(UserWarning, match="broken"):
        found = registry.available()
    assert "file" in found
