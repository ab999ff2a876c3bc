"""`FindingIndex.match`: the highest-impact finding whose one- or two-value segment holds an
item, the same answer for items that share the values findings name."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from core.insights import FindingIndex
from core.model import Finding, Item


def _finding(segment: dict[str, Any], impact: float, measure: str = "effort") -> Finding:
    return cast(Finding, SimpleNamespace(segment=segment, impact=impact, measure=measure))


def _item(**segments: Any) -> Item:
    return cast(Item, SimpleNamespace(segments=segments))


def test_match_takes_the_highest_impact_segment_that_holds_the_item() -> None:
    team, pair, size = _finding({"team": "A"}, 2.0), _finding({"team": "A", "type": "Bug"}, 5.0), \
        _finding({"size": 3}, 4.0)
    index = FindingIndex([team, pair, size, _finding({"team": "A"}, 9.0, "finish"),
                          _finding({"team": "A", "type": "Bug", "size": 3}, 99.0)], "effort")
    assert index.match(_item(team="A", type="Bug", size="3")) is pair
    assert index.match(_item(type="Bug", team="A")) is pair  # either order of the values
    assert index.match(_item(team="A", type="Story", size=3)) is size  # 3 and "3" alike
    assert index.match(_item(team="A", type="Story")) is team
    assert index.match(_item(team="B", type="Bug", size=5)) is None
    assert index.match(_item(team="A", type="Bug", size="3")) is pair  # remembered, same answer
    assert FindingIndex([], "effort").match(_item(team="A")) is None


def test_ties_go_to_the_first_segment_in_the_items_order() -> None:
    first, second = _finding({"team": "A"}, 1.0), _finding({"type": "Bug"}, 1.0)
    index = FindingIndex([second, first], "effort")
    assert index.match(_item(team="A", type="Bug")) is first
    assert index.match(_item(type="Bug", team="A")) is second
