"""A SOQL parser and evaluator for the Salesforce emulator.

Covers what a sync connector sends: `SELECT` of fields (parent relationship paths such as
`Account.Industry`, `COUNT()`), `FROM` one object, `WHERE` with `AND`/`OR`/`NOT` and parentheses
(mixing `AND` and `OR` without parentheses is refused, as Salesforce does), `=`, `!=`, `<>`, `<`,
`<=`, `>`, `>=`, `IN`/`NOT IN`, `LIKE`, literals (quoted strings with backslash escapes, numbers,
`true`/`false`/`null`, date `2026-01-31`, datetime `2026-01-31T10:00:00Z` / `.000+0000` /
`+01:00`, `TODAY`, `YESTERDAY`, `LAST_N_DAYS:n`), `ORDER BY` several fields with `ASC`/`DESC`
and `NULLS FIRST`/`LAST`, `LIMIT`, `OFFSET`. Anything else is a `MALFORMED_QUERY`; a field or
object the org does not have is `INVALID_FIELD` / `INVALID_TYPE`; a literal of the wrong type
for its field is `INVALID_FIELD`, with Salesforce's wording.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.emulators.salesforce.schema import NUMBER_TYPES, TEXT_TYPES, Field, SObject


class SoqlError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<string>'(?:[^'\\]|\\.)*')
  | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
  | (?P<date>\d{4}-\d{2}-\d{2}(?![\dT]))
  | (?P<number>-?\d+(?:\.\d+)?(?![\w-]))
  | (?P<op><=|>=|!=|<>|=|<|>)
  | (?P<punct>[(),:])
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
""", re.X)
KEYWORDS = {"select", "from", "where", "and", "or", "not", "in", "like", "order", "by", "asc",
            "desc", "nulls", "first", "last", "limit", "offset", "true", "false", "null"}
DATE_FUNCS = {"today", "yesterday", "tomorrow", "last_n_days", "next_n_days"}


@dataclass
class Token:
    kind: str
    text: str
    pos: int


def tokenize(text: str) -> list[Token]:
    out, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", _where(text, pos, f"unexpected token: "
                                                             f"'{text[pos:pos + 10].split()[0]}'"))
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup or "", m.group(), pos))
        pos = m.end()
    return out


def _where(text: str, pos: int, message: str) -> str:
    line = text[:pos].count("\n") + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"\n{text}\n{' ' * (col - 1)}^\nERROR at Row:{line}:Column:{col}\n{message}"


def sf_datetime(value: dt.datetime) -> str:
    """Salesforce's datetime format: 2026-01-31T10:00:00.000+0000 (UTC)."""
    value = value.astimezone(dt.UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> dt.datetime:
    text = text.replace("Z", "+00:00")
    if re.search(r"[+-]\d{4}$", text):
        text = text[:-2] + ":" + text[-2:]
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


# ---- the parsed query --------------------------------------------------------------------------
@dataclass
class Path:
    """A field reference: relationship hops then a field on the last object."""

    hops: list[Field]  # reference fields followed (Opportunity.AccountId for Account.Industry)
    field: Field
    text: str  # as written

    @property
    def output_names(self) -> list[str]:
        return [h.relationship or "" for h in self.hops] + [self.field.name]


@dataclass
class Query:
    sobject: SObject
    fields: list[Path]
    count: bool = False
    where: Callable[[Callable[[Path], Any]], bool] | None = None
    order: list[tuple[Path, bool, bool]] = field(default_factory=list)  # path, desc, nulls last
    limit: int | None = None
    offset: int = 0
    # The WHERE clause is one `field IN (...)` or `field = value` on a field of the object
    # itself: (field, comparable values), so an emulator may look the rows up by index.
    lookup: tuple[Field, frozenset[Any]] | None = None


class Parser:
    def __init__(self, text: str, schema: dict[str, SObject], enabled: Callable[[SObject], bool],
                 now: dt.datetime) -> None:
        self.text = text
        self.schema = schema
        self.enabled = enabled
        self.now = now
        self.tokens = tokenize(text)
        self.i = 0

    # -- token helpers
    def peek(self, offset: int = 0) -> Token | None:
        j = self.i + offset
        return self.tokens[j] if j < len(self.tokens) else None

    def is_kw(self, word: str, offset: int = 0) -> bool:
        t = self.peek(offset)
        return t is not None and t.kind == "ident" and t.text.lower() == word

    def fail(self, message: str | None = None, code: str = "MALFORMED_QUERY") -> SoqlError:
        t = self.peek()
        pos = t.pos if t else len(self.text)
        msg = message or (f"unexpected token: '{t.text}'" if t else "unexpected token: '<EOF>'")
        return SoqlError(code, _where(self.text, pos, msg))

    def expect_kw(self, word: str) -> None:
        if not self.is_kw(word):
            raise self.fail()
        self.i += 1

    def expect(self, text: str) -> None:
        t = self.peek()
        if t is None or t.text != text:
            raise self.fail()
        self.i += 1

    # -- grammar
    def parse(self) -> Query:
        self.expect_kw("select")
        raw: list[Token] = []
        count = False
        if self.is_kw("count") and self.peek(1) and self.peek(1).text == "(":  # type: ignore[union-attr]
            self.i += 2
            self.expect(")")
            count = True
        else:
            while True:
                t = self.peek()
                if t is None or t.kind != "ident" or t.text.lower() in KEYWORDS:
                    raise self.fail()
                raw.append(t)
                self.i += 1
                if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    continue
                break
        self.expect_kw("from")
        t = self.peek()
        if t is None or t.kind != "ident":
            raise self.fail()
        self.i += 1
        sobject = next((o for n, o in self.schema.items() if n.lower() == t.text.lower()), None)
        if sobject is None or not self.enabled(sobject):
            raise SoqlError("INVALID_TYPE", _where(
                self.text, t.pos, f"sObject type '{t.text}' is not supported. If you are "
                "attempting to use a custom object, be sure to append the '__c' after the "
                "entity name. Please reference your WSDL or the describe call for the "
                "appropriate names."))
        self.sobject = sobject
        query = Query(sobject=sobject, fields=[], count=count)
        seen: set[str] = set()
        for tok in raw:
            path = self.path(sobject, tok)
            key = ".".join(path.output_names).lower()
            if key in seen:
                raise SoqlError("MALFORMED_QUERY", _where(self.text, tok.pos,
                                                          f"duplicate field selected: {tok.text}"))
            seen.add(key)
            query.fields.append(path)
        if self.is_kw("where"):
            self.i += 1
            start = self.i
            self.last_lookup: tuple[Field, frozenset[Any]] | None = None
            self.lookup_span: tuple[int, int] = (-1, -1)
            query.where = self.condition()
            lookup = self.last_lookup
            if lookup is not None and self.lookup_span == (start, self.i):
                query.lookup = lookup
        if self.is_kw("order"):
            self.i += 1
            self.expect_kw("by")
            while True:
                t = self.peek()
                if t is None or t.kind != "ident":
                    raise self.fail()
                self.i += 1
                path = self.path(sobject, t)
                desc = False
                if self.is_kw("asc") or self.is_kw("desc"):
                    desc = self.peek().text.lower() == "desc"  # type: ignore[union-attr]
                    self.i += 1
                nulls_last = desc
                if self.is_kw("nulls"):
                    self.i += 1
                    if not (self.is_kw("first") or self.is_kw("last")):
                        raise self.fail()
                    nulls_last = self.peek().text.lower() == "last"  # type: ignore[union-attr]
                    self.i += 1
                query.order.append((path, desc, nulls_last))
                if self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                    self.i += 1
                    continue
                break
        if self.is_kw("limit"):
            self.i += 1
            query.limit = self.integer()
        if self.is_kw("offset"):
            self.i += 1
            query.offset = self.integer()
            if query.offset > 2000:
                raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE",
                                "Maximum SOQL offset allowed is 2000")
        if self.peek() is not None:
            raise self.fail()
        return query

    def integer(self) -> int:
        t = self.peek()
        if t is None or t.kind != "number" or "." in t.text or t.text.startswith("-"):
            raise self.fail()
        self.i += 1
        return int(t.text)

    def path(self, sobject: SObject, tok: Token) -> Path:
        parts = tok.text.split(".")
        if len(parts) > 1 and parts[0].lower() == sobject.name.lower():
            parts = parts[1:]  # Opportunity.Name FROM Opportunity
        hops: list[Field] = []
        current = sobject
        for part in parts[:-1]:
            ref = current.relationship(part)
            if ref is None or len(ref.reference_to) != 1:
                raise SoqlError("INVALID_FIELD", _where(
                    self.text, tok.pos, f"Didn't understand relationship '{part}' in field path. "
                    "If you are attempting to use a custom relationship, be sure to append the "
                    "'__r' after the custom relationship name. Please reference your WSDL or the "
                    "describe call for the appropriate names."))
            hops.append(ref)
            current = self.schema[ref.reference_to[0]]
        found = current.field(parts[-1])
        if found is None:
            raise SoqlError("INVALID_FIELD", _where(
                self.text, tok.pos, f"No such column '{parts[-1]}' on entity '{current.name}'. If "
                "you are attempting to use a custom field, be sure to append the '__c' after the "
                "custom field name. Please reference your WSDL or the describe call for the "
                "appropriate names."))
        return Path(hops=hops, field=found, text=tok.text)

    def condition(self) -> Callable[[Callable[[Path], Any]], bool]:
        first = self.term()
        if not (self.is_kw("and") or self.is_kw("or")):
            return first
        joiner = self.peek().text.lower()  # type: ignore[union-attr]
        parts = [first]
        while self.is_kw("and") or self.is_kw("or"):
            if self.peek().text.lower() != joiner:  # type: ignore[union-attr]
                raise self.fail(f"unexpected token: '{self.peek().text}'")  # type: ignore[union-attr]
            self.i += 1
            parts.append(self.term())
        if joiner == "and":
            return lambda get: all(p(get) for p in parts)
        return lambda get: any(p(get) for p in parts)

    def term(self) -> Callable[[Callable[[Path], Any]], bool]:
        if self.is_kw("not"):
            self.i += 1
            inner = self.term()
            return lambda get: not inner(get)
        t = self.peek()
        if t is not None and t.text == "(":
            self.i += 1
            inner = self.condition()
            self.expect(")")
            return inner
        if t is None or t.kind != "ident" or t.text.lower() in KEYWORDS:
            raise self.fail()
        begin = self.i
        self.i += 1
        path = self.path(self.sobject, t)
        negate = False
        if self.is_kw("not") and (self.is_kw("in", 1) or self.is_kw("like", 1)):
            negate = True
            self.i += 1
        if self.is_kw("in"):
            self.i += 1
            self.expect("(")
            values = [self.literal(path)]
            while self.peek() and self.peek().text == ",":  # type: ignore[union-attr]
                self.i += 1
                values.append(self.literal(path))
            self.expect(")")
            keys = {self.key(path.field, v) for v in values}
            if not path.hops and not negate:
                self.last_lookup = (path.field, frozenset(keys))
                self.lookup_span = (begin, self.i)
            return lambda get: (self.key(path.field, get(path)) in keys) != negate
        if self.is_kw("like"):
            self.i += 1
            if path.field.type not in TEXT_TYPES:
                raise self.fail(f"invalid operator on {path.field.type} field: LIKE",
                                "INVALID_FIELD")
            value = self.literal(path)
            pattern = re.compile("^" + re.escape(str(value)).replace("%", ".*").replace("_", ".")
                                 + "$", re.I | re.S)
            return lambda get: (get(path) is not None
                                and pattern.match(str(get(path))) is not None) != negate
        op_tok = self.peek()
        if op_tok is None or op_tok.kind != "op":
            raise self.fail()
        self.i += 1
        op = op_tok.text
        value = self.literal(path)
        target = self.key(path.field, value)
        if op in ("=", "!=", "<>"):
            eq = op == "="
            return lambda get: (self.key(path.field, get(path)) == target) == eq
        if value is None:
            raise self.fail("null can only be used with = or !=", "INVALID_FIELD")
        if path.field.type == "boolean":
            raise self.fail(f"invalid operator on {path.field.type} field: {op}", "INVALID_FIELD")
        cmp = {"<": lambda a: a < target, "<=": lambda a: a <= target,
               ">": lambda a: a > target, ">=": lambda a: a >= target}[op]

        def compare(get: Callable[[Path], Any]) -> bool:
            got = self.key(path.field, get(path))
            return got is not None and bool(cmp(got))

        return compare

    @staticmethod
    def key(f: Field, value: Any) -> Any:
        """The comparable form of a stored or literal value (text case-insensitive, ids 15-18)."""
        if value is None:
            return None
        if f.type in ("id", "reference"):
            return str(value)[:15]
        if f.type in TEXT_TYPES:
            return str(value).lower()
        return value  # dates and datetimes are stored and parsed in one normalised text form

    def literal(self, path: Path) -> Any:
        t = self.peek()
        if t is None:
            raise self.fail()
        f = path.field
        kind = f.type
        self.i += 1
        wrong = f"value of filter criterion for field '{path.field.name}' must be of type " \
                f"{ {'datetime': 'dateTime'}.get(kind, kind)} and should not be enclosed in quotes"
        if t.kind == "ident" and t.text.lower() == "null":
            return None
        if t.kind == "ident" and t.text.lower() in ("true", "false"):
            if kind != "boolean":
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            return t.text.lower() == "true"
        if kind == "boolean":
            raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
        if t.kind == "string":
            if kind not in TEXT_TYPES:
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            body = t.text[1:-1]
            return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(
                m.group(1), m.group(1)), body)
        if kind in TEXT_TYPES:
            raise SoqlError("INVALID_FIELD", _where(
                self.text, t.pos, f"value of filter criterion for field '{f.name}' must be of "
                                  f"type {kind} and should be enclosed in quotes"))
        if t.kind == "number":
            if kind not in NUMBER_TYPES:
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            return float(t.text) if "." in t.text or kind != "int" else int(t.text)
        if t.kind == "datetime":
            if kind != "datetime":
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            return sf_datetime(parse_datetime(t.text))
        if t.kind == "date":
            if kind != "date":
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            return t.text
        if t.kind == "ident" and t.text.lower() in DATE_FUNCS:
            if kind not in ("date", "datetime"):
                raise SoqlError("INVALID_FIELD", _where(self.text, t.pos, wrong))
            days = {"today": 0, "yesterday": -1, "tomorrow": 1}.get(t.text.lower())
            if days is None:
                self.expect(":")
                n = self.integer()
                days = -n if t.text.lower() == "last_n_days" else n
            day = (self.now + dt.timedelta(days=days)).date()
            if kind == "date":
                return day.isoformat()
            return sf_datetime(dt.datetime.combine(day, dt.time(), dt.UTC))
        raise SoqlError("MALFORMED_QUERY", _where(self.text, t.pos,
                                                  f"unexpected token: '{t.text}'"))


def parse(text: str, schema: dict[str, SObject], enabled: Callable[[SObject], bool],
          now: dt.datetime | None = None) -> Query:
    return Parser(text, schema, enabled, now or dt.datetime.now(dt.UTC)).parse()
