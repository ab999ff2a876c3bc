"""The connector kit's conformance suite on the hubspot connector, against its harness."""

from __future__ import annotations

from connectors.hubspot import HubSpotConnector
from core.testing import conformance_tests
from tests.connectors.hubspot.harness import HubSpotHarness

TestConformance = conformance_tests(HubSpotConnector, HubSpotHarness)
