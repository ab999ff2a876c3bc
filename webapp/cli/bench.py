"""`learnloop bench learn --items N`: one learning run over N synthetic items, timed."""

from __future__ import annotations

from typing import Annotated

import typer

from webapp.cli.common import JSON_HELP, emit_json, out

app = typer.Typer(help="Measure learnloop on synthetic data.", no_args_is_help=True)


@app.command("learn")
def learn(
    items: Annotated[int, typer.Option(min=100, help="How many items to generate.")] = 100_000,
    url: Annotated[str | None, typer.Option(help="Database URL (default: a temporary SQLite).")]
    = None,
    as_json: Annotated[bool, typer.Option("--json", help=JSON_HELP)] = False,
) -> None:
    """Fill a fresh store with N items (10% open, 6 segment dimensions) and time one run."""
    from webapp.bench import bench_learn

    result = bench_learn(items, url)
    if as_json:
        emit_json({k: result[k] for k in ("items", "seconds", "peak_mb")} | {"detail": result})
        return
    out.print(f"{result['items']} items: learning run {result['seconds']} s wall, "
              f"{result['cpu_seconds']} s CPU, peak {result['peak_mb']} MB (fill "
              f"{result['fill_seconds']} s); load average {result['load_before']} before, "
              f"{result['load_after']} after")
    before, after = result["reference_seconds"]
    out.print(f"  machine speed: a fixed reference workload took {before} s of CPU before the "
              f"run and {after} s after (slower host, longer times: compare runs by this)")
    for step, t in result["steps"].items():
        out.print(f"  {step:<22} {t['wall']:>6.2f} s wall {t['cpu']:>6.2f} s CPU")
