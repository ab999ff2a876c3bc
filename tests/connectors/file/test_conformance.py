"""The connector kit's conformance suite on the file connector, against its harness."""

from __future__ import annotations

from connectors.file import FileConnector
from core.testing import conformance_tests
from tests.connectors.file.harness import FileHarness

TestConformance = conformance_tests(FileConnector, FileHarness)
