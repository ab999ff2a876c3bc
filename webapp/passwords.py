"""The password rule: long enough, and not blank, repeated, sequential or common."""

from __future__ import annotations

import functools
import unicodedata
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 1000
RULE = (f"choose a password of at least {MIN_LENGTH} characters (spaces and invisible "
        "characters do not count) that is not a common password, one character or a short "
        "pattern repeated, or a run like 1234567890, abcdefghij or qwertyuiop")
COMMON_FILE = Path(__file__).parent / "data" / "common_passwords.txt"
_INVISIBLE = frozenset({"Zs", "Zl", "Zp", "Cc", "Cf", "Cn", "Mn", "Me"})
_RUNS = ("0123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiop", "asdfghjkl", "zxcvbnm",
         "1qaz2wsx3edc4rfv", "qazwsxedcrfv")
_LEET = str.maketrans({"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a",
                       "$": "s", "!": "i"})
_AFFIX = "0123456789!@#$%^&*()-_=+.,;:?/\\|~`'\"[]{}<> "


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords and the words they are built on (lower case)."""
    lines = COMMON_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


def _visible(password: str) -> str:
    text = unicodedata.normalize("NFKC", password)
    return "".join(c for c in text if unicodedata.category(c) not in _INVISIBLE).lower()


def _repeated(text: str) -> bool:
    """One character, or a unit of up to four characters, said over and over."""
    if len(set(text)) <= 2:
        return True
    return any(len(text) >= 2 * n and (text[:n] * (len(text) // n + 1))[:len(text)] == text
               for n in range(1, 5))


def _run(text: str) -> bool:
    """A stretch of the digits, the alphabet or a keyboard row, forwards or backwards."""
    for run in _RUNS:
        cycle = run * (len(text) // len(run) + 2)
        if text in cycle or text in cycle[::-1]:
            return True
    return False


def _common(text: str) -> bool:
    known = common_passwords()
    core = text.strip(_AFFIX)
    candidates = {text, core, text.translate(_LEET), core.translate(_LEET)}
    return any(c in known for c in candidates if c)


def weakness(password: str) -> str | None:
    """Why `password` is refused (the rule in one sentence), or None when it is fine."""
    visible = _visible(password)
    if len(visible) < MIN_LENGTH or len(password) > MAX_LENGTH:
        return RULE if len(password) <= MAX_LENGTH else \
            f"a password may have at most {MAX_LENGTH} characters"
    squeezed = "".join(visible.split())
    if _repeated(squeezed) or _run(squeezed) or _common(visible) or _common(squeezed):
        return RULE
    return None
