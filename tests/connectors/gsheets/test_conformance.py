"""The connector kit's conformance suite on the gsheets connector, against its harness."""

from __future__ import annotations

from connectors.gsheets import GSheetsConnector
from core.testing import conformance_tests
from tests.connectors.gsheets.harness import GSheetsHarness

TestConformance = conformance_tests(GSheetsConnector, GSheetsHarness)
