"""The conformance suite: plain checks, and `conformance_tests` turning them into a pytest class."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from core.connections import validate_config, validate_mapping
from core.contract import SURFACES, Connector, ConnectorFactory, Intent
from core.secrets import secret_field_names
from core.testing.harness import Harness, HarnessFactory
from core.testing.payloads import ITEM_SURFACES, payload_for

SHAPE = ("__init__.py", "config.py", "client.py", "sync.py", "writeback.py", "mapping.py",
         "README.md")
SECRET_WORDS = ("token", "secret", "password", "key")


class ConformanceError(AssertionError):
    """A connector broke the contract; the message says which rule and where."""


def _fail(message: str) -> None:
    raise ConformanceError(message)


def build(factory: ConnectorFactory, harness: Harness) -> Connector:
    """The connector under test: `harness.build(factory)` when the harness has one, else the
    factory called with the harness's validated config and its mapping."""
    custom = getattr(harness, "build", None)
    if custom is not None:
        connector: Connector = custom(factory)
        return connector
    return factory(validate_config(factory, harness.config()), harness.mapping())


@contextmanager
def _harness(harness_factory: HarnessFactory, tmp_path: Path) -> Iterator[Harness]:
    harness = harness_factory(tmp_path)
    try:
        yield harness
        problems = harness.unexpected()
        if problems:
            _fail(f"the emulator saw requests it does not allow: {problems[:5]}")
    finally:
        close = getattr(harness, "close", None)
        if close is not None:
            close()


def check_config_model(factory: ConnectorFactory) -> None:
    """Every config field is described; secrets are SecretStr and named as secrets."""
    model = factory.config_model
    secrets = set(secret_field_names(model))
    for name, field in model.model_fields.items():
        if not field.description:
            _fail(f"{factory.name}.{name} has no description")
        if any(w in name for w in SECRET_WORDS) and name not in secrets:
            _fail(f"{factory.name}.{name} looks secret but is not SecretStr")
    for name in secrets:
        if not any(w in name for w in SECRET_WORDS):
            _fail(f"secret {factory.name}.{name} is not named as one ({', '.join(SECRET_WORDS)})")
        if model.model_fields[name].annotation not in (SecretStr, SecretStr | None):
            _fail(f"secret {factory.name}.{name} is not typed SecretStr")
    if model.model_json_schema().get("type") != "object":
        _fail(f"{factory.name}: the config model's JSON schema is not an object")


def check_contract(factory: ConnectorFactory) -> None:
    """Name, title, known surfaces and an `id` mapping field."""
    if not (factory.name and factory.title):
        _fail(f"{factory!r} needs a name and a title")
    if not factory.capabilities or not factory.capabilities <= set(SURFACES):
        unknown = sorted(set(factory.capabilities) - set(SURFACES))
        _fail(f"{factory.name}: capabilities must be known surfaces (unknown: {unknown})")
    if not any(f.name == "id" for f in factory.mapping_fields):
        _fail(f"{factory.name}: mapping_fields has no 'id'")


def check_pull(factory: ConnectorFactory, harness: Harness) -> None:
    """The mapping validates; two pulls from nothing give the same items, mapped onto the core
    model (unique ids, known statuses, aware datetimes), holding every item target."""
    validate_mapping(factory, harness.mapping())
    connector = build(factory, harness)
    if not isinstance(connector, Connector):
        _fail(f"{factory.name}: the built connector does not satisfy core.contract.Connector")
    first = [i for b in connector.pull(None) for i in b.items]
    second = [i for b in connector.pull(None) for i in b.items]
    if not first or first != second:
        _fail(f"{factory.name}: two pulls from no cursor differ (or read nothing)")
    ids = [i.external_id for i in first]
    if len(ids) != len(set(ids)):
        _fail(f"{factory.name}: a pull returned an item id twice")
    for surface in sorted(factory.capabilities & ITEM_SURFACES):
        missing = set(harness.targets(surface)) - set(ids)
        if missing:
            _fail(f"{factory.name}: {surface} targets {sorted(missing)} are not pulled items")
    for item in first:
        if item.status not in ("open", "done", "cancelled"):
            _fail(f"{factory.name}: item {item.external_id} has status {item.status!r}")
        for value in (item.planned_due, item.actual_end, item.estimated_at):
            if value is not None and value.utcoffset() is None:
                _fail(f"{factory.name}: item {item.external_id} has a naive datetime")


def check_install(factory: ConnectorFactory, harness: Harness) -> None:
    """A second install creates nothing; the health check passes in words."""
    connector = build(factory, harness)
    connector.install()
    second = connector.install()
    if second.created:
        _fail(f"{factory.name}: a second install created {second.created}")
    health = connector.check()
    if not (health.ok and health.message):
        _fail(f"{factory.name}: health check failed: {health.message!r}")


def check_surface(factory: ConnectorFactory, harness: Harness, surface: str) -> None:
    """Redelivery leaves one object, and a new payload edits it.

    Delivers the surface's payload to every target twice with no tool_ref (as after a retaken
    claim: the first delivery reached the tool, its tool_ref was never stored), then a changed
    payload with the tool_ref of the first delivery; after each round the harness counts one
    object per target in the tool and reads back the newest marker.
    """
    connector = build(factory, harness)
    targets = harness.targets(surface)
    if not targets:
        _fail(f"{factory.name}: the harness gives no target for {surface}")
    old, new = f"kit-{surface}-first", f"kit-{surface}-second"
    intents = [Intent(n, t, surface, payload_for(surface, old)) for n, t in enumerate(targets, 1)]
    rounds = []
    for _ in range(2):
        results = connector.deliver(intents)
        bad = [r for r in results if not r.ok]
        if bad or len(results) != len(intents):
            _fail(f"{factory.name}: delivering {surface} failed: {bad or results}")
        rounds.append({r.intent_id: r.tool_ref for r in results})
    for intent in intents:
        first, again = rounds[0][intent.id], rounds[1][intent.id]
        if first is not None and again != first:
            _fail(f"{factory.name}: redelivered {surface} on {intent.target} came back as "
                  f"{again!r}, not the object first written ({first!r})")
    _expect(factory, harness, surface, targets, old, "delivered twice")
    edits = [Intent(i.id + len(intents), i.target, surface, payload_for(surface, new),
                    rounds[0][i.id]) for i in intents]
    results = connector.deliver(edits)
    bad = [r for r in results if not r.ok]
    if bad:
        _fail(f"{factory.name}: editing {surface} failed: {bad}")
    _expect(factory, harness, surface, targets, new, "edited with its tool_ref")
    for target in targets:
        if old in harness.read_back(target, surface):
            _fail(f"{factory.name}: {surface} on {target} still shows the old payload after "
                  "an edit")


def _expect(factory: ConnectorFactory, harness: Harness, surface: str, targets: list[str],
            marker: str, when: str) -> None:
    for target in targets:
        count = harness.count(target, surface)
        if count != 1:
            _fail(f"{factory.name}: {surface} on {target} {when}: {count} objects in the tool, "
                  "not 1")
        text = harness.read_back(target, surface)
        if marker not in text:
            _fail(f"{factory.name}: {surface} on {target} {when}: the tool shows {text[:200]!r}, "
                  f"without {marker!r}")


def package_dir(factory: ConnectorFactory) -> Path:
    """The directory of the package that defines the connector."""
    package = factory.__module__.split(".")
    module = importlib.import_module(".".join(package[:2] if package[0] == "connectors"
                                              else package[:1]))
    if module.__file__ is None:
        _fail(f"{factory.name}: its package {module.__name__} has no directory")
    return Path(str(module.__file__)).parent


def check_package_shape(factory: ConnectorFactory) -> None:
    """One shape per connector; its README documents every surface and config field."""
    pkg = package_dir(factory)
    for name in SHAPE:
        if not (pkg / name).is_file():
            _fail(f"{factory.name}: {pkg.name}/{name} is missing (one shape per connector)")
    readme = (pkg / "README.md").read_text(encoding="utf-8")
    for surface in sorted(factory.capabilities):
        if surface not in readme:
            _fail(f"{factory.name}: {pkg.name}/README.md does not document {surface}")
    for name in factory.config_model.model_fields:
        if f"`{name}`" not in readme:
            _fail(f"{factory.name}: {pkg.name}/README.md does not document `{name}`")


def check_cheap_import(factory: ConnectorFactory, harness: Harness) -> None:
    """Importing the connector's package in a fresh interpreter imports none of its SDK."""
    package = package_dir(factory).name
    if factory.__module__.startswith("connectors."):
        package = f"connectors.{package}"
    sdk = tuple(harness.sdk_modules)
    code = (f"import sys, {package}; bad = [m for m in {sdk!r} if m in sys.modules];"
            "print(bad); sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False, env=None, timeout=120)
    if result.returncode != 0:
        _fail(f"{factory.name}: importing {package} imports its SDK: "
              f"{(result.stdout + result.stderr).strip()[-500:]}")


def conformance_tests(factory: ConnectorFactory, harness_factory: HarnessFactory) -> type:
    """A pytest test class running the whole suite on one connector with its harness.

    Use it in the connector's own tests: `TestConformance = conformance_tests(MyConnector,
    MyHarness)`. The surface test is parametrized over the connector's capabilities: every
    declared surface is written twice and must leave one object.
    """
    import pytest  # test-time only: importing core.testing does not need pytest

    def test_config_model_is_documented_and_secrets_are_secretstr(self: Any) -> None:
        check_config_model(factory)

    def test_contract_attributes(self: Any) -> None:
        check_contract(factory)

    def test_pull_is_deterministic_and_maps_onto_the_core_model(self: Any,
                                                                tmp_path: Path) -> None:
        with _harness(harness_factory, tmp_path) as harness:
            check_pull(factory, harness)

    def test_install_is_idempotent_and_health_is_plain(self: Any, tmp_path: Path) -> None:
        with _harness(harness_factory, tmp_path) as harness:
            check_install(factory, harness)

    @pytest.mark.parametrize("surface", sorted(factory.capabilities))
    def test_every_surface_written_twice_leaves_one_object(self: Any, tmp_path: Path,
                                                           surface: str) -> None:
        with _harness(harness_factory, tmp_path) as harness:
            check_surface(factory, harness, surface)

    def test_package_shape_and_readme_documents_every_surface(self: Any) -> None:
        check_package_shape(factory)

    def test_importing_the_connector_does_not_import_its_sdk(self: Any, tmp_path: Path) -> None:
        with _harness(harness_factory, tmp_path) as harness:
            check_cheap_import(factory, harness)

    members = {name: value for name, value in locals().items() if name.startswith("test_")}
    members["connector"] = factory
    members["__doc__"] = f"The connector kit's conformance suite on {factory.name}."
    return type(f"TestConformance_{factory.name}", (), members)
