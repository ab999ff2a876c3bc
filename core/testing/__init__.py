"""The connector kit: the conformance suite a connector's own tests run against its emulator.

Importing `core.testing` needs nothing beyond the core; `conformance_tests` imports pytest
when it is called (from a test module), so pytest stays a test-time dependency only.
"""

from __future__ import annotations

from core.testing.conformance import (
    build,
    check_cheap_import,
    check_config_model,
    check_contract,
    check_install,
    check_package_shape,
    check_pull,
    check_surface,
    conformance_tests,
)
from core.testing.harness import Harness, HarnessFactory
from core.testing.payloads import ITEM_SURFACES, TEMPLATE_TASKS, payload_for

__all__ = [
    "ITEM_SURFACES",
    "TEMPLATE_TASKS",
    "Harness",
    "HarnessFactory",
    "build",
    "check_cheap_import",
    "check_config_model",
    "check_contract",
    "check_install",
    "check_package_shape",
    "check_pull",
    "check_surface",
    "conformance_tests",
    "payload_for",
]
