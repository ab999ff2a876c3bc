"""A sample third-party connector: a task board kept as JSON (cards with comments and notes)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from pydantic import BaseModel

from core.contract import (
    COMMENT,
    FIELDS,
    NOTE,
    Batch,
    Delivery,
    FieldInfo,
    Health,
    InstallReport,
    Intent,
    MappingField,
    WriteTarget,
    surfaces_of,
)
from core.errors import LearnloopError
from learnloop_sample import client, sync, writeback
from learnloop_sample.config import BoardConfig
from learnloop_sample.mapping import MAPPING_FIELDS


class BoardConnector:
    """Reads the board's cards; writes learnloop's fields, one comment and one note per card."""

    name: ClassVar[str] = "board"
    title: ClassVar[str] = "Sample task board (JSON)"
    config_model: ClassVar[type[BaseModel]] = BoardConfig
    targets: ClassVar[tuple[WriteTarget, ...]] = (
        WriteTarget("forecast_p80", "number", FIELDS, "the card's 'learnloop P80' field"),
        WriteTarget("insight", "text", FIELDS, "the card's 'learnloop insight' field"),
        WriteTarget("comment", "text", COMMENT, "one learnloop comment, edited in place"),
        WriteTarget("note", "note", NOTE, "one learnloop note, edited in place"),
    )
    capabilities: ClassVar[frozenset[str]] = surfaces_of(targets)
    mapping_fields: ClassVar[tuple[MappingField, ...]] = MAPPING_FIELDS

    def __init__(self, config: BaseModel, mapping: Mapping[str, Any] | None = None) -> None:
        if not isinstance(config, BoardConfig):
            raise TypeError(f"BoardConnector needs a BoardConfig, not {type(config).__name__}")
        self.config = config
        self.mapping = dict(mapping or {})

    def check(self) -> Health:
        """The board file is readable."""
        try:
            cards = client.read(self.config)["cards"]
        except LearnloopError as exc:
            return Health(ok=False, message=str(exc))
        return Health(ok=True, message=f"board {self.config.path} readable, {len(cards)} cards")

    def install(self) -> InstallReport:
        """Declare learnloop's custom fields on the board (once)."""
        return writeback.install(self.config)

    def uninstall(self) -> InstallReport:
        """learnloop's fields and notes stay on the cards."""
        return InstallReport(problems=["learnloop's fields stay on the board"])

    def discover_fields(self) -> list[FieldInfo]:
        """The card attributes."""
        return [FieldInfo(k, k) for k in ("id", "title", "estimate", "spent", "status")]

    def pull(self, cursor: Mapping[str, Any] | None) -> Iterator[Batch]:
        """Every card, as one snapshot batch."""
        return sync.pull(self.config, cursor)

    def deliver(self, intents: Sequence[Intent]) -> list[Delivery]:
        """Fields, the learnloop comment and the learnloop note, each an upsert."""
        return writeback.deliver(self.config, intents)


__all__ = ["BoardConfig", "BoardConnector"]
