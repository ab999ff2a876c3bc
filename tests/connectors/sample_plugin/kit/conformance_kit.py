"""The sample connector's own tests: the learnloop kit, run on the installed plugin.

Not collected by learnloop's suite (the file name is no test_*): tests/connectors/
test_sample_plugin.py installs the plugin into a temporary directory and runs this file there.
"""

from __future__ import annotations

from harness import BoardHarness
from learnloop_sample import BoardConnector

from core.testing import conformance_tests

TestConformance = conformance_tests(BoardConnector, BoardHarness)
