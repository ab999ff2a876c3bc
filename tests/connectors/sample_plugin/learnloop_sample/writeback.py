"""Write learnloop's fields, comment and note onto cards: each found by its stored id or by
learnloop's marker, so a redelivered intent edits what the first delivery made."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.contract import (
    COMMENT,
    FIELDS,
    NOTE,
    CommentPayload,
    Delivery,
    FieldsPayload,
    InstallReport,
    Intent,
    NotePayload,
    PayloadError,
)
from learnloop_sample import client
from learnloop_sample.config import BoardConfig

FIELD_NAMES = {"forecast_p80": "learnloop P80", "insight": "learnloop insight"}
MARKER = "learnloop"  # the `by` of every comment and note learnloop writes


def install(config: BoardConfig) -> InstallReport:
    """Declare learnloop's custom fields on the board once."""
    board = client.read(config)
    declared = board.setdefault("custom_fields", [])
    created = [n for n in FIELD_NAMES.values() if n not in declared]
    declared += created
    if created:
        client.write(config, board)
    return InstallReport(created=created,
                         existing=[n for n in FIELD_NAMES.values() if n not in created])


def _upsert(entries: list[dict[str, Any]], key: str, tool_ref: str | None,
            text: str, next_id: int) -> str:
    """Edit learnloop's entry (by id, else by marker) or add one; returns its id."""
    mine = [e for e in entries if str(e.get("id")) == tool_ref] or \
        [e for e in entries if e.get("by") == MARKER and e.get("kind") == key]
    if mine:
        mine[0]["text"] = text
        return str(mine[0]["id"])
    entries.append({"id": next_id, "by": MARKER, "kind": key, "text": text})
    return str(next_id)


def _text(intent: Intent) -> str:
    """The text a comment or note carries (parsing the typed payload checks it)."""
    if intent.surface == COMMENT:
        return CommentPayload.from_json(intent.payload).text
    if intent.surface == NOTE:
        note = NotePayload.from_json(intent.payload)
        return f"{note.subject}: {note.body}"
    return ""


def deliver(config: BoardConfig, intents: Sequence[Intent]) -> list[Delivery]:
    """Apply the intents to the board and write it once."""
    board = client.read(config)
    cards = {str(c["id"]): c for c in board["cards"]}
    results = []
    for intent in intents:
        card = cards.get(intent.target)
        if card is None:
            results.append(Delivery(intent.id, ok=False, permanent=True,
                                    error=f"no card {intent.target!r} on the board"))
            continue
        try:
            text = _text(intent)
        except PayloadError as exc:
            results.append(Delivery(intent.id, ok=False, permanent=True, error=str(exc)))
            continue
        if intent.surface == FIELDS:
            values = card.setdefault("custom_fields", {})
            sent = FieldsPayload.from_json(intent.payload).to_json()
            for key, name in FIELD_NAMES.items():
                if key in sent:
                    values[name] = sent[key]
            results.append(Delivery(intent.id, ok=True, tool_ref=intent.target))
        elif intent.surface in (COMMENT, NOTE):
            where = card.setdefault("comments" if intent.surface == COMMENT else "notes", [])
            board["next_id"] = int(board.get("next_id", 1)) + 1
            ref = _upsert(where, intent.surface, intent.tool_ref, text, board["next_id"] - 1)
            results.append(Delivery(intent.id, ok=True, tool_ref=ref))
        else:
            results.append(Delivery(intent.id, ok=False, permanent=True,
                                    error=f"the board cannot write {intent.surface}"))
    client.write(config, board)
    return results
