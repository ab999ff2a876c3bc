"""The connector kit's conformance suite on the jira connector, against its harness."""

from __future__ import annotations

from connectors.jira import JiraConnector
from core.testing import conformance_tests
from tests.connectors.jira.harness import JiraHarness

TestConformance = conformance_tests(JiraConnector, JiraHarness)
