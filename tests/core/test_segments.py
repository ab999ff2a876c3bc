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


def test_a_rule_learned_on_the_exact_value_wins_over_one_on_a_part_of_it() -> None:
    from core import policy
    from core.model import Rule

    def rule(key: str, selector: dict[str, str], n: int) -> Rule:
        return Rule(key=key, selector=selector, params={"p80": 1.5}, evidence={"n": n})

    rules = {r.key: r for r in (rule("effort:part", {"components": "integration"}, 900),
                                rule("effort:exact", {"components": "api,integration"}, 40),
                                rule("effort:team", {"components": "api", "team": "pay"}, 10))}
    got = policy.rule_for(rules, {"components": "api,integration"})
    assert got is not None and got.key == "effort:exact"
    got = policy.rule_for(rules, {"components": "web,integration"})
    assert got is not None and got.key == "effort:part"
    got = policy.rule_for(rules, {"components": "API, web", "team": "PAY"})
    assert got is not None and got.key == "effort:team"  # more dimensions first
