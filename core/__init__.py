"""learnloop core: the model, the store, the connector contract, learning and the outbox."""

from __future__ import annotations

__version__ = "0.1.0"
