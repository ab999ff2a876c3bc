"""The connector kit's conformance suite on the salesforce connector, against its harness."""

from __future__ import annotations

from connectors.salesforce import SalesforceConnector
from core.testing import conformance_tests
from tests.connectors.salesforce.harness import SalesforceHarness

TestConformance = conformance_tests(SalesforceConnector, SalesforceHarness)
