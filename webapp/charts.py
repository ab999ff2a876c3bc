"""Self-contained inline SVG charts for server-rendered pages (no JavaScript, no network)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from html import escape

SVG_NS = "http://www.w3.org/2000/svg"
WIDTH = 640
HEIGHT = 360
MARGIN_LEFT = 64
MARGIN_RIGHT = 24
MARGIN_TOP = 48
MARGIN_BOTTOM = 52
ROW_LABEL_WIDTH = 200  # row charts: the plot area starts at this x
ROW_VALUE_WIDTH = 100  # row charts: right-hand column for the value text
ROW_HEIGHT = 28
PALETTE = ("#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6")
INK = "#333"
GRID = "#e5e5e5"
MUTED = "#777"
FONT = 'font-family="system-ui, sans-serif" font-size="12"'

Fmt = Callable[[float], str]


@dataclass(frozen=True)
class Spread:
    """Percentiles of one segment's distribution."""

    label: str
    n: int
    p10: float
    p25: float
    p50: float
    p75: float
    p90: float


@dataclass(frozen=True)
class Point:
    """One categorical x position of a line series, with an optional interval."""

    label: str
    value: float
    lo: float | None = None
    hi: float | None = None
    n: int | None = None


@dataclass(frozen=True)
class Series:
    """A named line over categorical x labels."""

    name: str
    points: Sequence[Point]


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an interval, e.g. an experiment lift for one segment."""

    label: str
    value: float
    lo: float
    hi: float
    n: int | None = None
    note: str = ""


@dataclass(frozen=True)
class _Scale:
    lo: float
    hi: float
    a: float
    b: float
    log: bool = False

    def __call__(self, v: float) -> float:
        f: Callable[[float], float] = math.log10 if self.log else float
        lo, hi = f(self.lo), f(self.hi)
        return self.a + (f(v) - lo) / (hi - lo) * (self.b - self.a)


def _finite(*vals: float | None) -> bool:
    return all(v is not None and math.isfinite(v) for v in vals)


def _n(v: float) -> str:
    r = round(v, 1)
    return str(int(r)) if r == int(r) else f"{r:.1f}"


def _fmt(v: float) -> str:
    if v == round(v) and abs(v) < 1e15:
        return f"{round(v):,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _pct(v: float) -> str:
    return f"{v * 100:+.1f}%"


def _pct_tick(v: float) -> str:
    return _fmt(round(v * 100, 6)) + "%"


def _clip(s: str, n: int = 30) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _tip(s: str) -> str:
    return f"<title>{escape(s)}</title>"


def _text(x: float, y: float, s: str, cls: str, anchor: str = "start", extra: str = "") -> str:
    return (
        f'<text class="{cls}" x="{_n(x)}" y="{_n(y)}" text-anchor="{anchor}" fill="{INK}"'
        f"{extra}>{escape(s)}</text>"
    )


def _line(
    x1: float, y1: float, x2: float, y2: float, cls: str, stroke: str = INK, extra: str = ""
) -> str:
    return (
        f'<line class="{cls}" x1="{_n(x1)}" y1="{_n(y1)}" x2="{_n(x2)}" y2="{_n(y2)}"'
        f' stroke="{stroke}"{extra}/>'
    )


def _svg(title: str, height: float, body: Iterable[str], width: float | None = None) -> str:
    """The chart's frame: scaled to its box, or drawn at `width` px (never wider than its box,
    so its text keeps the page's size instead of growing with a wide screen)."""
    t = escape(title)
    size = 'width="100%"' + ("" if width is None else f' style="max-width:{_n(width)}px"')
    return (
        f'<svg xmlns="{SVG_NS}" class="chart" viewBox="0 0 {_n(width or WIDTH)} {_n(height)}" {size}'
        f' role="img" aria-label="{t}" {FONT}><title>{t}</title>'
        + _text(8, 20, title, "chart-title", extra=' font-weight="bold" font-size="14"')
        + "".join(body)
        + "</svg>"
    )


def _empty(title: str, message: str) -> str:
    msg = _text(WIDTH / 2, 56, message, "empty", "middle", ' fill-opacity="0.6"')
    return _svg(title, 80, [msg])


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Return round, increasing tick values that cover ``[lo, hi]``.

    Args:
        lo: Lower end of the data range.
        hi: Upper end of the data range (swapped with ``lo`` if smaller).
        n: Desired tick count; the result has between ``n - 1`` and ``n + 1`` ticks.

    Returns:
        Ticks whose step is 1, 2, 2.5 or 5 times a power of ten; the first is <= lo and
        the last is >= hi.

    Raises:
        ValueError: If ``lo`` or ``hi`` is not finite.
    """
    if not _finite(lo, hi):
        raise ValueError("nice_ticks needs finite bounds")
    lo, hi = min(lo, hi), max(lo, hi)
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        pad = abs(lo) * 0.1 or 1.0
        lo, hi = lo - pad, hi + pad
    exp = math.floor(math.log10((hi - lo) / (4 * max(n, 2))))
    while True:
        for m in (1, 2, 2.5, 5):
            step = m * 10.0**exp
            i0, i1 = math.floor(lo / step + 1e-9), math.ceil(hi / step - 1e-9)
            if i1 - i0 <= n:
                return [round(i * step, max(0, 2 - exp)) for i in range(i0, i1 + 1)]
        exp += 1


def _log_ticks(lo: float, hi: float) -> list[float]:
    e0 = math.floor(math.log10(lo))
    d = max(1, math.ceil(math.log10(hi)) - e0)
    stride = math.ceil(d / 5)
    d = stride * math.ceil(d / stride)
    mults = (1, 2, 5) if d == 1 else (1, 3) if d == 2 else (1,)
    return [
        m * 10.0**e for e in range(e0, e0 + d + 1, stride) for m in mults if e < e0 + d or m == 1
    ]


def _ticks(vals: Sequence[float], log: bool) -> list[float]:
    return _log_ticks(min(vals), max(vals)) if log else nice_ticks(min(vals), max(vals))


def _x_axis(
    sc: _Scale, ticks: Sequence[float], top: float, bot: float, label: str, fmt: Fmt = _fmt
) -> list[str]:
    out = []
    for t in ticks:
        out.append(_line(sc(t), top, sc(t), bot, "grid", GRID))
        out.append(_text(sc(t), bot + 16, fmt(t), "tick", "middle"))
    out.append(_line(sc.a, bot, sc.b, bot, "axis"))
    out.append(_text((sc.a + sc.b) / 2, bot + 38, label, "axis-label", "middle"))
    return out


def _y_axis(
    sc: _Scale, ticks: Sequence[float], left: float, right: float, label: str, fmt: Fmt = _fmt
) -> list[str]:
    out = []
    for t in ticks:
        out.append(_line(left, sc(t), right, sc(t), "grid", GRID))
        out.append(_text(left - 6, sc(t) + 4, fmt(t), "tick", "end"))
    out.append(_line(left, sc.a, left, sc.b, "axis"))
    mid = (sc.a + sc.b) / 2
    out.append(_text(-mid, 16, label, "axis-label", "middle", ' transform="rotate(-90)"'))
    return out


def _cat_axis(
    cats: Sequence[str], left: float, right: float, bot: float
) -> tuple[list[float], list[str]]:
    step = (right - left) / len(cats)
    every = max(1, math.ceil(len(cats) / 12))
    pos = [left + step * (i + 0.5) for i in range(len(cats))]
    out = [_line(left, bot, right, bot, "axis")]
    out += [
        _text(pos[i], bot + 16, _clip(c, 12), "tick", "middle")
        for i, c in enumerate(cats)
        if i % every == 0
    ]
    return pos, out


def scatter(
    points: Sequence[tuple[float, float]],
    *,
    x_label: str,
    y_label: str,
    title: str,
    log: bool = True,
    diagonal: bool = True,
    n_total: int | None = None,
    labels: Sequence[str] | None = None,
    empty: str = "No data yet",
) -> str:
    """Render planned (x) vs actual (y) as a scatter plot.

    Args:
        points: ``(x, y)`` pairs; non-finite pairs (and non-positive ones when ``log``) are skipped.
        x_label: X axis label, also used in tooltips.
        y_label: Y axis label, also used in tooltips.
        title: Chart title (SVG ``<title>`` and ``aria-label``).
        log: Use log10 axes.
        diagonal: Draw a dashed y = x line labelled "as planned".
        n_total: Size of the full population when ``points`` is a sample.
        labels: Optional per-point labels (same order as ``points``) for tooltips.
        empty: Message shown when nothing can be plotted.

    Returns:
        An ``<svg>`` element as a string.
    """
    keep = [
        (x, y, labels[i] if labels is not None and i < len(labels) else "")
        for i, (x, y) in enumerate(points)
        if _finite(x, y) and (not log or (x > 0 and y > 0))
    ]
    if not keep:
        return _empty(title, empty)
    xt, yt = _ticks([p[0] for p in keep], log), _ticks([p[1] for p in keep], log)
    top, bot = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM
    sx = _Scale(xt[0], xt[-1], MARGIN_LEFT, WIDTH - MARGIN_RIGHT, log)
    sy = _Scale(yt[0], yt[-1], bot, top, log)
    body = _x_axis(sx, xt, top, bot, x_label) + _y_axis(sy, yt, sx.a, sx.b, y_label)
    lo, hi = max(xt[0], yt[0]), min(xt[-1], yt[-1])
    if diagonal and lo < hi:
        body.append(
            _line(sx(lo), sy(lo), sx(hi), sy(hi), "diagonal", MUTED, ' stroke-dasharray="5 4"')
        )
        body.append(_text(sx(hi) - 4, sy(hi) + 14, "as planned", "diagonal-label", "end"))
    for x, y, lab in keep:
        tip = f"{x_label} {_fmt(x)}, {y_label} {_fmt(y)}"
        body.append(
            f'<circle class="pt" cx="{_n(sx(x))}" cy="{_n(sy(y))}" r="2.5" fill="{PALETTE[0]}"'
            f' fill-opacity="0.45">{_tip(f"{lab}: {tip}" if lab else tip)}</circle>'
        )
    if n_total is not None and n_total > len(points):
        body.append(
            _text(
                WIDTH - MARGIN_RIGHT,
                20,
                f"{len(points):,} of {n_total:,} items shown",
                "caption",
                "end",
            )
        )
    return _svg(title, HEIGHT, body)


def _row_frame(
    n_rows: int, ticks: Sequence[float], log: bool, x_label: str, fmt: Fmt,
    left: float = ROW_LABEL_WIDTH, right: float = WIDTH - ROW_VALUE_WIDTH,
) -> tuple[_Scale, list[str], float]:
    bot = MARGIN_TOP + ROW_HEIGHT * n_rows
    sc = _Scale(ticks[0], ticks[-1], left, right, log)
    return sc, _x_axis(sc, ticks, MARGIN_TOP, bot, x_label, fmt), bot + MARGIN_BOTTOM


CHAR_WIDTH = 7.0  # px per character of 12 px system-ui text, a little generous


def _text_width(s: str) -> float:
    return CHAR_WIDTH * len(s)


def _row_text(label: str, n: int | None, clip: int = 30) -> str:
    return _clip(label, clip) + (f" (n={n:,})" if n is not None else "")


def _row_label(i: int, label: str, n: int | None, left: float = ROW_LABEL_WIDTH,
               clip: int = 30) -> str:
    return _text(left - 8, _row_y(i) + 4, _row_text(label, n, clip), "row-label", "end")


def _row_y(i: int) -> float:
    return MARGIN_TOP + ROW_HEIGHT * (i + 0.5)


def distribution(
    groups: Sequence[Spread],
    *,
    title: str,
    x_label: str,
    reference: float | None = 1.0,
    empty: str = "No data yet",
) -> str:
    """Render one horizontal box plot per segment.

    Args:
        groups: Segments; those with any non-finite percentile are skipped.
        title: Chart title.
        x_label: X axis label.
        reference: X value of a dashed vertical reference line (e.g. 1.0 = on plan), or None.
        empty: Message shown when nothing can be plotted.

    Returns:
        An ``<svg>`` element; the x scale is log10 when all values are positive and span > 10x.
    """
    rows = [g for g in groups if _finite(g.p10, g.p25, g.p50, g.p75, g.p90)]
    if not rows:
        return _empty(title, empty)
    ref = reference if reference is not None and _finite(reference) else None
    vals = [v for g in rows for v in (g.p10, g.p25, g.p50, g.p75, g.p90)]
    vals += [ref] if ref is not None else []
    log = min(vals) > 0 and max(vals) / min(vals) > 10
    sc, body, height = _row_frame(len(rows), _ticks(vals, log), log, x_label, _fmt)
    for i, g in enumerate(rows):
        cy = _row_y(i)
        tip = (
            f"{g.label} (n={g.n:,}): p10 {_fmt(g.p10)}, p25 {_fmt(g.p25)}, median "
            f"{_fmt(g.p50)}, p75 {_fmt(g.p75)}, p90 {_fmt(g.p90)}"
        )
        x25, x75 = sorted((sc(g.p25), sc(g.p75)))
        body += [
            _row_label(i, g.label, g.n),
            _line(sc(g.p10), cy, sc(g.p90), cy, "whisker"),
            f'<rect class="box" x="{_n(x25)}" y="{_n(cy - 8)}" width="{_n(x75 - x25)}"'
            f' height="16" fill="#cfe0f7" stroke="{PALETTE[0]}">{_tip(tip)}</rect>',
            _line(sc(g.p50), cy - 8, sc(g.p50), cy + 8, "median", INK, ' stroke-width="2"'),
            _text(sc.b + 8, cy + 4, _fmt(g.p50), "val"),
        ]
    if ref is not None:
        body.append(
            _line(
                sc(ref),
                MARGIN_TOP,
                sc(ref),
                height - MARGIN_BOTTOM,
                "ref",
                PALETTE[1],
                ' stroke-dasharray="4 3"',
            )
        )
    return _svg(title, height, body)


def forest(
    rows: Sequence[Estimate],
    *,
    title: str,
    x_label: str,
    zero: float = 0.0,
    percent: bool = True,
    empty: str = "No data yet",
) -> str:
    """Render a forest plot: one point estimate with its interval per segment.

    Args:
        rows: Estimates; those with a non-finite value, lo or hi are skipped.
        title: Chart title.
        x_label: X axis label.
        zero: X position of the vertical "no effect" line.
        percent: Format values as signed percentages ("+12.3%").
        empty: Message shown when nothing can be plotted.

    Returns:
        An ``<svg>`` element; the x domain is ``nice_ticks(min(lo, zero), max(hi, zero))``.
    """
    keep = [r for r in rows if _finite(r.value, r.lo, r.hi)]
    if not keep:
        return _empty(title, empty)
    fmt, tick_fmt = (_pct, _pct_tick) if percent else (_fmt, _fmt)
    vals = [v for r in keep for v in (r.value, r.lo, r.hi)] + ([zero] if _finite(zero) else [])
    # Laid out at a fixed scale: the label and value columns are as wide as their longest
    # text (nothing clipped), the plot keeps its width, and the chart is drawn at that size.
    left = max(ROW_LABEL_WIDTH, 16 + max(_text_width(_row_text(r.label, r.n, 60)) for r in keep))
    values = [fmt(r.value) + (f" {r.note}" if r.note else "") for r in keep]
    plot = WIDTH - ROW_LABEL_WIDTH - ROW_VALUE_WIDTH
    width = left + plot + max(ROW_VALUE_WIDTH, 16 + max(_text_width(v) for v in values))
    width = max(width, _text_width(title) * 14 / 12 + 16)
    sc, body, height = _row_frame(
        len(keep), nice_ticks(min(vals), max(vals)), False, x_label, tick_fmt, left, left + plot
    )
    if _finite(zero):
        body.append(_line(sc(zero), MARGIN_TOP, sc(zero), height - MARGIN_BOTTOM, "zero", INK))
    for i, r in enumerate(keep):
        cy = _row_y(i)
        tip = f"{r.label}: {fmt(r.value)} [{fmt(r.lo)}, {fmt(r.hi)}]"
        tip += (f", n={r.n:,}" if r.n is not None else "") + (f" ({r.note})" if r.note else "")
        body += [
            _row_label(i, r.label, r.n, left, 60),
            _line(sc(r.lo), cy, sc(r.hi), cy, "ci", PALETTE[0], ' stroke-width="2"'),
            f'<circle class="est" cx="{_n(sc(r.value))}" cy="{_n(cy)}" r="4"'
            f' fill="{PALETTE[0]}">{_tip(tip)}</circle>',
            _text(sc.b + 8, cy + 4, values[i], "val"),
        ]
    return _svg(title, height, body, width)


def _band(run: list[tuple[float, float, float]], color: str, k: int) -> str:
    if len(run) == 1:
        x, lo, hi = run[0]
        run = [(x - 4, lo, hi), (x + 4, lo, hi)]
    pts = [(x, hi) for x, _, hi in run] + [(x, lo) for x, lo, _ in reversed(run)]
    coords = " ".join(f"{_n(x)},{_n(y)}" for x, y in pts)
    return f'<polygon class="band s{k}" points="{coords}" fill="{color}" fill-opacity="0.15"/>'


def lines(
    series: Sequence[Series],
    *,
    title: str,
    y_label: str,
    targets: Mapping[str, float] | None = None,
    y_range: tuple[float, float] | None = None,
    empty: str = "No data yet",
) -> str:
    """Render one line per series over categorical x labels, with optional interval bands.

    Args:
        series: Series; points with a non-finite value are skipped (the line breaks there).
        title: Chart title.
        y_label: Y axis label.
        targets: Dashed horizontal target lines by name, e.g. ``{"P80": 0.8}``.
        y_range: Fixed y domain; values outside it are clamped to the edge.
        empty: Message shown when nothing can be plotted.

    Returns:
        An ``<svg>`` element with a legend above the plot.
    """
    cats = list(dict.fromkeys(p.label for s in series for p in s.points if _finite(p.value)))
    if not cats:
        return _empty(title, empty)
    tgt = {k: v for k, v in (targets or {}).items() if _finite(v)}
    if y_range is not None and _finite(*y_range) and y_range[0] < y_range[1]:
        lo, hi = y_range
        ticks = [t for t in nice_ticks(lo, hi) if lo - 1e-9 <= t <= hi + 1e-9]
    else:
        vals = [
            v
            for s in series
            for p in s.points
            for v in (p.value, p.lo, p.hi)
            if v is not None and _finite(v)
        ] + list(tgt.values())
        ticks = nice_ticks(min(vals), max(vals))
        lo, hi = ticks[0], ticks[-1]
    top, bot, left, right = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM, MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    sy = _Scale(lo, hi, bot, top)

    def y(v: float) -> float:
        return sy(min(max(v, lo), hi))

    pos, body = _cat_axis(cats, left, right, bot)
    body = _y_axis(sy, ticks, left, right, y_label) + body
    xs = dict(zip(cats, pos, strict=True))
    for name, v in tgt.items():
        if lo <= v <= hi:
            body.append(_line(left, y(v), right, y(v), "target", MUTED, ' stroke-dasharray="6 4"'))
            body.append(_text(right - 2, y(v) - 4, name, "target-label", "end"))
    lx = float(left)
    for k, s in enumerate(series):
        color = PALETTE[k % len(PALETTE)]
        pts = [p for p in s.points if _finite(p.value)]
        runs: list[list[tuple[float, float, float]]] = [[]]
        d, prev = [], None
        for p in s.points:
            ok = _finite(p.value)
            if ok and p.lo is not None and p.hi is not None and _finite(p.lo, p.hi):
                runs[-1].append((xs[p.label], y(p.lo), y(p.hi)))
            elif runs[-1]:
                runs.append([])
            if ok:
                d.append(f"{'L' if prev else 'M'}{_n(xs[p.label])},{_n(y(p.value))}")
            prev = ok
        body += [_band(r, color, k) for r in runs if r]
        body.append(
            f'<path class="line s{k}" d="{" ".join(d)}" fill="none" stroke="{color}"'
            ' stroke-width="2"/>'
        )
        for p in pts:
            tip = f"{s.name} · {p.label}: {_fmt(p.value)}"
            if p.lo is not None and p.hi is not None and _finite(p.lo, p.hi):
                tip += f" ({_fmt(p.lo)} to {_fmt(p.hi)})"
            tip += f", n={p.n:,}" if p.n is not None else ""
            body.append(
                f'<circle class="pt s{k}" cx="{_n(xs[p.label])}" cy="{_n(y(p.value))}"'
                f' r="3" fill="{color}">{_tip(tip)}</circle>'
            )
        body.append(
            f'<rect class="swatch s{k}" x="{_n(lx)}" y="27" width="10" height="10" fill="{color}"/>'
        )
        body.append(_text(lx + 14, 36, s.name, "legend"))
        lx += 28 + 7 * len(s.name)
    return _svg(title, HEIGHT, body)


def bars(
    values: Sequence[tuple[str, float]], *, title: str, y_label: str, empty: str = "No data yet"
) -> str:
    """Render simple vertical bars over categorical labels (e.g. count per month).

    Args:
        values: ``(label, value)`` pairs; non-finite values are skipped.
        title: Chart title.
        y_label: Y axis label.
        empty: Message shown when nothing can be plotted.

    Returns:
        An ``<svg>`` element; bars start at zero.
    """
    keep = [(str(lab), v) for lab, v in values if _finite(v)]
    if not keep:
        return _empty(title, empty)
    vs = [v for _, v in keep]
    ticks = nice_ticks(min(0.0, *vs), max(0.0, *vs))
    top, bot, left, right = MARGIN_TOP, HEIGHT - MARGIN_BOTTOM, MARGIN_LEFT, WIDTH - MARGIN_RIGHT
    sy = _Scale(ticks[0], ticks[-1], bot, top)
    pos, axis = _cat_axis([lab for lab, _ in keep], left, right, bot)
    body = _y_axis(sy, ticks, left, right, y_label) + axis
    w = (right - left) / len(keep) * 0.7
    for (lab, v), x in zip(keep, pos, strict=True):
        y0, y1 = sorted((sy(v), sy(0)))
        body.append(
            f'<rect class="bar" x="{_n(x - w / 2)}" y="{_n(y0)}" width="{_n(w)}"'
            f' height="{_n(y1 - y0)}" fill="{PALETTE[0]}">{_tip(f"{lab}: {_fmt(v)}")}</rect>'
        )
    if ticks[0] < 0:
        body.append(_line(left, sy(0), right, sy(0), "zero"))
    return _svg(title, HEIGHT, body)
