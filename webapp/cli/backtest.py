"""`learnloop backtest FILE.csv`: how well would learnloop have forecast this history?"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from pathlib import Path
from typing import Annotated, Any

import typer

from connectors.file.client import read_table
from core.errors import InputError
from core.learning.backtest import Row, backtest
from core.learning.ledger import wilson
from core.tabular import find_header
from core.tabular.cells import Cell
from core.tabular.header import normalise
from core.tabular.values import DateParser, is_missing, parse_number
from webapp.cli.common import JSON_HELP, emit_json, out


def _finish_time(parser: DateParser, cell: Cell) -> dt.datetime | None:
    if is_missing(cell):
        return None
    try:
        return parser.parse(cell)
    except ValueError:
        return None


def run(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX of finished items.")],
    planned: Annotated[str, typer.Option(help="Column with the plan (estimate).")],
    actual: Annotated[str, typer.Option(help="Column with the actual.")],
    time: Annotated[str, typer.Option(help="Column with when the plan was made.")],
    segment: Annotated[list[str] | None, typer.Option(help="A segment column (repeatable).")]
    = None,
    done: Annotated[str | None, typer.Option(
        help="Column with when the item finished: a training row then counts only if it had "
             "finished by the cut-off (no look-ahead).")] = None,
    encoding: Annotated[str, typer.Option(help="Text encoding (default: UTF-8, then cp1252).")]
    = "auto",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Train on the oldest 70% (by TIME), test on the newest 30%, against the simple rules."""
    table = read_table(str(file), encoding)
    segments = segment or []
    header = find_header(table.rows, planned)
    if header is None:
        raise InputError(f"{file.name}: no header row with the column '{planned}'")
    index = header.index()
    named = [planned, actual, time, *segments, *([done] if done else [])]
    missing = [c for c in named if normalise(c) not in index]
    if missing:
        raise InputError(f"{file.name}: missing column {', '.join(repr(c) for c in missing)}; "
                         f"the columns are: {', '.join(repr(n) for n in header.names[:30])}")
    p_i, a_i, t_i = (index[normalise(c)] for c in (planned, actual, time))
    d_i = index[normalise(done)] if done else None
    s_i = {c: index[normalise(c)] for c in segments}
    data = table.rows[header.row_number:]
    parser = DateParser()
    parser.learn([r[t_i] for r in data[:5000] if t_i < len(r)])
    finish_parser = DateParser()
    if d_i is not None:
        finish_parser.learn([r[d_i] for r in data[:5000] if d_i < len(r)])
    dropped: Counter[str] = Counter()
    rows: list[Row] = []
    unknown_finish = 0
    for r in data:
        if all(is_missing(c) for c in r):
            continue
        cells = list(r) + [None] * (len(header.names) - len(r))
        values: dict[str, float] = {}
        for name, i in (("planned", p_i), ("actual", a_i)):
            if is_missing(cells[i]):
                dropped[f"{name} missing"] += 1
                break
            try:
                values[name] = parse_number(cells[i])
            except ValueError:
                dropped[f"{name} not a number"] += 1
                break
        if len(values) < 2:
            continue
        try:
            when = parser.parse(cells[t_i])
        except ValueError:
            dropped["time missing or unparseable"] += 1
            continue
        known = None
        if d_i is not None:
            known = _finish_time(finish_parser, cells[d_i])
            unknown_finish += known is None
        segs = {c: str(cells[i]).strip() for c, i in s_i.items() if not is_missing(cells[i])}
        rows.append(Row(when, values["planned"], values["actual"], segs, known))
    try:
        result = backtest(rows)
    except ValueError as exc:
        parsed = "; ".join(f"{k}: {v}" for k, v in sorted(dropped.items()) if v)
        raise InputError(f"{file.name}: {exc}" + (f"; unreadable rows: {parsed}" if parsed
                                                   else "")) from None
    left_out = Counter(result.pop("left_out"))
    left_out.update(dropped)
    result = {"file": file.name, "left_out": dict(sorted(left_out.items())), **result}
    if d_i is not None:
        # Without a finish time a row cannot be checked for look-ahead: it is kept.
        result["finish_time_missing_kept"] = unknown_finish
    if as_json:
        emit_json(result)
        return
    _print(result, time)


def _print(result: dict[str, Any], time: str) -> None:
    n_test = result["n_test"]
    total = sum(result["left_out"].values())
    out.print(f"{result['file']}: trained on {result['n_train']:,} rows (oldest 70% by {time}), "
              f"tested on {n_test:,}; {total:,} rows left out"
              + (f" ({', '.join(f'{k}: {v:,}' for k, v in result['left_out'].items())})"
                 if total else ""))
    if "zero_actuals" in result:
        out.print(result["zero_actuals"]["note"])
    out.print(f"{'quantile':>8}  {'method':<34} {'coverage (90% interval)':>24} {'pinball':>8}")
    for q, methods in result["quantiles"].items():
        for name, s in methods.items():
            label = name
            if name == "best_single_column":
                label = f"best single column: {s['column']}"
            elif name == "global_multiplier":
                label = f"global multiplier x{s['multiplier']:.2f}"
            low, high = wilson(round(s["coverage"] * n_test), n_test)
            cov = f"{s['coverage']:.3f} ({low:.3f}-{high:.3f})"
            out.print(f"{'P' + str(round(float(q) * 100)):>8}  {label:<34} {cov:>24} "
                      f"{s['pinball']:>8.4f}")
    out.print("coverage: share of the test rows with actual <= forecast (target: the quantile); "
              "pinball: loss on log(actual/planned), lower is better. The single column is "
              "picked on the newest part of the training rows, never on the test rows.")
    out.print("learnloop's choice, made on the newest 25% of the training rows:")
    for line in result["model"]["summary"]:
        out.print(f"  {line}")
