"""Lessons through the JSON API and the pages: enter, list with verdicts, show evidence."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from core.learning.run import run_learning
from tests.core.learning_data import load
from tests.core.lessons_data import work
from tests.webapp.accounts_helpers import bearer, form_token, people, signed_in
from webapp.app import create_app

LESSON = {"words": "We always underestimate integration work",
          "predicts": "component=integration takes 1.5x",
          "behaviour": "plan 1.5x for integration tasks", "date": "2026-03-02"}


def test_the_api_enters_lists_and_shows_lessons_with_their_evidence(engine: Engine) -> None:
    people(engine, "template_owner", "viewer")
    api = TestClient(create_app(engine))
    owner = bearer(engine, "template_owner@example.com")
    made = api.post("/api/lessons", json=LESSON, headers=owner)
    assert made.status_code == 201, made.text
    lesson = made.json()
    assert (lesson["status"], lesson["created_by"], lesson["multiplier"]) == (
        "untested", "template_owner@example.com", 1.5)
    viewer = bearer(engine, "viewer@example.com")
    refused = api.post("/api/lessons", json=LESSON, headers=viewer)
    assert refused.status_code == 403
    bad = api.post("/api/lessons", json={**LESSON, "predicts": "is tricky"}, headers=owner)
    assert bad.status_code == 422 and "names no multiplier" in bad.json()["detail"]
    load(engine, work())
    run_learning(engine)
    (row,) = api.get("/api/lessons", headers=viewer).json()
    assert row["status"] == "holds" and row["evidence"]["recurrence"]["failed"] == 4
    one = api.get(f"/api/lessons/{lesson['id']}", headers=viewer).json()
    assert one["verdict"] == row["verdict"] and "failed again in 4 of the 5" in one["verdict"]
    assert api.get("/api/lessons?status=untested", headers=viewer).json() == []
    assert api.get("/api/lessons/999", headers=viewer).status_code == 404
    assert api.get("/api/lessons?status=nope", headers=viewer).status_code == 422


def test_the_pages_show_verdicts_and_the_form_refuses_bad_input(engine: Engine) -> None:
    people(engine, "template_owner")
    client = signed_in(engine, "template_owner@example.com")
    page = client.get("/lessons")
    assert page.status_code == 200 and "No lessons yet" in page.text
    sent = client.post("/lessons", data={**LESSON, "csrf_token": form_token(page.text)},
                       follow_redirects=True)
    assert sent.status_code == 200 and "the next learning run tests it" in sent.text
    bad = client.post("/lessons", data={"words": "x", "predicts": "meh",
                                        "csrf_token": form_token(page.text)},
                      follow_redirects=True)
    assert "names no multiplier" in bad.text
    load(engine, work())
    run_learning(engine)
    listed = client.get("/lessons").text
    assert "holds" in listed and "failed again in 4 of the 5 projects since" in listed
    detail = client.get("/lessons/1").text
    assert "id=\"lesson-recurrence\"" in detail and "P5" in detail
    assert "90% interval" in detail and "proposal #" in detail
    findings = client.get("/findings?kind=lesson").text
    assert "failed again in 4 of the 5 projects since" in findings
