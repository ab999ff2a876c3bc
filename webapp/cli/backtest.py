"""`learnloop backtest FILE.csv`: how well would learnloop have forecast this history?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from connectors.file.client import read_table
from core.errors import InputError
from core.learning.backtest import Row, backtest
from core.tabular import find_header
from core.tabular.header import normalise
from core.tabular.values import DateParser, is_missing, parse_number
from webapp.cli.common import JSON_HELP, emit_json, out


def run(
    file: Annotated[Path, typer.Argument(help="CSV or XLSX of finished items.")],
    planned: Annotated[str, typer.Option(help="Column with the plan (estimate).")],
    actual: Annotated[str, typer.Option(help="Column with the actual.")],
    time: Annotated[str, typer.Option(help="Column with when the plan was made.")],
    segment: Annotated[list[str] | None, typer.Option(help="A segment column (repeatable).")]
    = None,
    encoding: Annotated[str, typer.Option(help="Text encoding (default: UTF-8, then cp1252).")]
    = "auto",
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Train on the oldest 70% (by TIME), test on the newest 30%, against two baselines."""
    table = read_table(str(file), encoding)
    segments = segment or []
    header = find_header(table.rows, planned)
    if header is None:
        raise InputError(f"{file.name}: no header row with the column '{planned}'")
    index = header.index()
    missing = [c for c in (planned, actual, time, *segments) if normalise(c) not in index]
    if missing:
        raise InputError(f"{file.name}: missing column {', '.join(repr(c) for c in missing)}; "
                         f"the columns are: {', '.join(repr(n) for n in header.names[:30])}")
    p_i, a_i, t_i = (index[normalise(c)] for c in (planned, actual, time))
    s_i = {c: index[normalise(c)] for c in segments}
    data = table.rows[header.row_number:]
    parser = DateParser()
    parser.learn([r[t_i] for r in data[:5000] if t_i < len(r)])
    dropped: dict[str, int] = {}
    rows: list[Row] = []

    def drop(reason: str) -> None:
        dropped[reason] = dropped.get(reason, 0) + 1

    for r in data:
        if all(is_missing(c) for c in r):
            continue
        cells = list(r) + [None] * (len(header.names) - len(r))
        values: dict[str, float] = {}
        for name, i in (("planned", p_i), ("actual", a_i)):
            if is_missing(cells[i]):
                drop(f"{name} missing")
                break
            try:
                values[name] = parse_number(cells[i])
            except ValueError:
                drop(f"{name} not a number")
                break
            if values[name] <= 0:
                drop(f"{name} <= 0")
                break
        if len(values) < 2:
            continue
        try:
            when = parser.parse(cells[t_i])
        except ValueError:
            drop("time missing or unparseable")
            continue
        segs = {c: str(cells[i]).strip() for c, i in s_i.items() if not is_missing(cells[i])}
        rows.append(Row(when, values["planned"], values["actual"], segs))
    try:
        result = backtest(rows)
    except ValueError as exc:
        raise InputError(f"{file.name}: {exc}") from None
    result = {"file": file.name, "dropped": dropped, **result}
    if as_json:
        emit_json(result)
        return
    total = sum(dropped.values())
    out.print(f"{file.name}: trained on {result['n_train']} rows (oldest 70% by {time}), tested "
              f"on {result['n_test']}; {total} rows dropped"
              + (f" ({', '.join(f'{k}: {v}' for k, v in dropped.items())})" if total else ""))
    out.print(f"{'quantile':>8}  {'method':<18} {'coverage':>8} {'pinball':>8}")
    for q, methods in result["quantiles"].items():
        for name, s in methods.items():
            out.print(f"{'P' + str(round(float(q) * 100)):>8}  {name:<18} {s['coverage']:>8.3f} "
                      f"{s['pinball']:>8.4f}")
    out.print("coverage: share of test rows with actual <= forecast (target: the quantile); "
              "pinball: loss on log(actual/planned), lower is better")
