"""One rule for whether an item is in a segment, for selectors, predicates and lessons."""

from __future__ import annotations

import pytest

from core.lessons.parse import matches as lesson_matches
from core.process.predicate import matches as predicate_matches
from core.process.predicate import parse
from core.segments import value_in, within


@pytest.mark.parametrize(("wanted", "have", "inside"), [
    ("integration", "integration", True),
    ("integration", "Integration ", True),
    ("Integration", "api,integration", True),
    ("integration", "API, Integration", True),
    ("api,integration", "api,integration", True),  # a finding's selector, stored as read
    ("integration", "integrations", False),
    ("integration", "api", False),
    ("5", 5, True),
    ("integration", None, False),
])
def test_value_in(wanted: str, have: object, inside: bool) -> None:
    assert value_in(wanted, have) is inside


def test_selectors_predicates_and_lessons_agree() -> None:
    item = {"team": "Payments", "components": "API, Integration", "type": "Bug"}
    assert within({"components": "integration", "team": "payments"}, item)
    assert not within({"components": "integration", "team": "growth"}, item)
    assert predicate_matches(parse("team=payments,growth;components=integration"), item)
    assert not predicate_matches(parse("team=growth"), item)
    assert lesson_matches({"component": "integration"}, item)  # the lesson's alias
    assert not lesson_matches({"component": "web"}, item)
