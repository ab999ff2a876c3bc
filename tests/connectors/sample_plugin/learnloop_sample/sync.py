"""Pull the board's cards."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from core.contract import Batch
from learnloop_sample import client
from learnloop_sample.config import BoardConfig
from learnloop_sample.mapping import to_item


def pull(config: BoardConfig, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
    """Every card in one snapshot batch (a board is small)."""
    cards = client.read(config)["cards"]
    yield Batch(items=[to_item(c) for c in cards], cursor={"cards": len(cards)}, snapshot=True)
