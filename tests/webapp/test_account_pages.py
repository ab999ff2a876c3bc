"""The password rule, the login form's cookie over https, and messages a link cannot forge."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tests.webapp.accounts_helpers import bearer, form_token, people, signed_in
from webapp.app import create_app

WEAK = ["          ", "\u200b" * 10, "aaaaaaaaaa", "password12", "Password123!", "P@ssw0rd2024",
        "1234567890", "0987654321", "abcdefghij", "qwertyuiop", "ababababab", "abcabcabcabc",
        "iloveyou12", "letmein!!!!", " \t \n  \u00a0  \u3000  ", "aaaaa     aaaaa"]
GOOD = ["correct horse battery staple", "Tr4ffic-Lights-Sing", "a long enough password"]


def test_weak_passwords_are_refused_with_one_plain_message(engine: Engine) -> None:
    people(engine, "admin")
    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    for password in WEAK:
        r = api.post("/api/users", headers=headers, json={
            "email": "new@example.com", "password": password, "role": "viewer"})
        assert r.status_code == 422, password
        assert r.json()["detail"].startswith("choose a password of at least 10 characters"), \
            (password, r.text)


def test_good_passwords_are_accepted(engine: Engine) -> None:
    people(engine, "admin")
    api, headers = TestClient(create_app(engine)), bearer(engine, "admin@example.com")
    for i, password in enumerate(GOOD):
        r = api.post("/api/users", headers=headers, json={
            "email": f"new{i}@example.com", "password": password, "role": "viewer"})
        assert r.status_code == 201, r.text


def test_the_first_run_page_applies_the_rule_too(engine: Engine) -> None:
    client = TestClient(create_app(engine))
    token = form_token(client.get("/setup").text)
    r = client.post("/setup", data={"email": "me@example.com", "password": "password12",
                                     "csrf_token": token})
    assert r.status_code == 422 and "not a common password" in r.text


def test_the_login_form_cookie_is_secure_over_https_only(engine: Engine) -> None:
    people(engine, "admin")
    over_https = TestClient(create_app(engine), base_url="https://testserver")
    cookie = over_https.get("/login").headers["set-cookie"]
    assert cookie.startswith("learnloop_login_csrf=") and "Secure" in cookie
    assert "Secure" not in TestClient(create_app(engine)).get("/login").headers["set-cookie"]
    form = over_https.get("/login")
    r = over_https.post("/login", data={"email": "admin@example.com",
                                         "password": "a long enough password",
                                         "csrf_token": form_token(form.text)},
                        follow_redirects=False)
    assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]


def test_chosen_text_in_the_query_string_is_not_shown(engine: Engine) -> None:
    people(engine, "admin", "admin2")
    admin = signed_in(engine, "admin@example.com")
    bait = "Your account is locked: call +1 555 0100"
    for path in ("/admin/users", "/proposals", "/checklists", "/admin/connections", "/audit"):
        page = admin.get(path, params={"err": bait, "msg": bait})
        assert page.status_code == 200 and bait not in page.text, path
        page = admin.get(path, params={"msg": bait, "sig": "0" * 32})
        assert bait not in page.text, path

    token = form_token(admin.get("/admin/users").text)
    r = admin.post("/admin/users", data={"email": "new@example.com", "role": "viewer",
                                         "password": "a long enough password",
                                         "csrf_token": token}, follow_redirects=False)
    shown = admin.get(r.headers["location"])
    assert "added new@example.com" in shown.text  # what the server said is shown
    other = signed_in(engine, "admin2@example.com")  # but the link is no use to anyone else
    assert "added new@example.com" not in other.get(r.headers["location"]).text
