"""The reports' plots, drawn with matplotlib's object API (no pyplot state, no display) and
returned as PNG bytes for embedding. matplotlib is imported on first use (`perfsuite[plots]`).

Every function takes plain labels and numbers: what to plot is decided by report/html.py.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from perfsuite.lazy import require

WIDTH_IN = 8.0
ROW_IN = 0.32  # height per bar or box
REGRESSION_COLOR = "#c62828"
COLORS = ("#1565c0", "#ef6c00", "#2e7d32", "#6a1b9a", "#00838f", "#ad1457", "#4e342e")


def _figure(rows: int, min_height: float = 2.2) -> Any:
    require("matplotlib")
    from matplotlib.figure import Figure  # after require: its error names the extra

    return Figure(figsize=(WIDTH_IN, max(min_height, 1.2 + ROW_IN * rows)), dpi=100,
                  layout="constrained")


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _horizontal() -> dict[str, Any]:
    """Horizontal boxes: `orientation` from matplotlib 3.10, which deprecates `vert` in 3.11."""
    version = tuple(int(p) for p in require("matplotlib").__version__.split(".")[:2])
    return {"orientation": "horizontal"} if version >= (3, 10) else {"vert": False}


def _spread_axis(axes: Any, values: Sequence[float], axis: str = "x") -> None:
    """Log scale where the values span more than a factor of 20."""
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > 20:
        _log(axes, axis)


def _log(axes: Any, axis: str = "x") -> None:
    """A log axis labelled at its decades only (minor labels collide)."""
    from matplotlib.ticker import NullFormatter

    (axes.set_xscale if axis == "x" else axes.set_yscale)("log")
    (axes.xaxis if axis == "x" else axes.yaxis).set_minor_formatter(NullFormatter())


def distributions(title: str, labels: Sequence[str], samples: Sequence[Sequence[float]],
                  unit: str = "ms") -> bytes:
    """One horizontal box per label over its raw samples (whiskers 5th-95th percentile, the
    rest as points), first label at the top."""
    figure = _figure(len(labels))
    axes = figure.add_subplot()
    axes.boxplot([list(s) for s in samples][::-1], **_horizontal(), whis=(5, 95), widths=0.6,
                 flierprops={"markersize": 2, "alpha": 0.4})
    axes.set_yticks(range(1, len(labels) + 1), list(labels)[::-1])
    _spread_axis(axes, [v for s in samples for v in s])
    axes.set_xlabel(unit)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def bars(title: str, labels: Sequence[str], values: Sequence[float], xlabel: str,
         reference: float | None = None, log: bool = False,
         marked: Sequence[bool] = ()) -> bytes:
    """Horizontal bars, first label at the top, each annotated with its value; `reference`
    draws a dashed line (a speedup of 1); `marked` bars are drawn in the regression color."""
    figure = _figure(len(labels))
    axes = figure.add_subplot()
    positions = list(range(len(labels)))[::-1]
    colors = [REGRESSION_COLOR if marked and marked[i] else COLORS[0] for i in range(len(labels))]
    axes.barh(positions, list(values), color=colors, height=0.6)
    axes.set_yticks(positions, list(labels))
    if log:
        _log(axes)
    if reference is not None:
        axes.axvline(reference, color="#555555", linestyle="--", linewidth=1)
    for position, value in zip(positions, values):
        axes.annotate(f"{value:.3g}", (value, position), xytext=(3, 0),
                      textcoords="offset points", va="center", fontsize=8)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def grouped_bars(title: str, labels: Sequence[str], groups: Sequence[str],
                 values: Sequence[Sequence[float | None]], xlabel: str) -> bytes:
    """Horizontal bars per label, one color per group (a machine); None leaves a gap."""
    figure = _figure(len(labels) * max(1, len(groups)) // 2 + len(labels))
    axes = figure.add_subplot()
    height = 0.8 / max(1, len(groups))
    drawn: list[float] = []
    for g, group in enumerate(groups):
        positions = [len(labels) - 1 - i + 0.4 - height * (g + 0.5) for i in range(len(labels))]
        shown = [(p, v[g]) for p, v in zip(positions, values) if v[g] is not None]
        axes.barh([p for p, _ in shown], [v for _, v in shown], height=height,
                  color=COLORS[g % len(COLORS)], label=group)
        drawn.extend(v for _, v in shown if v is not None)
    axes.set_yticks(range(len(labels))[::-1], list(labels))
    _spread_axis(axes, drawn)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return _png(figure)


def paired_sides(title: str, labels: Sequence[str], base: Sequence[Sequence[float]],
                 current: Sequence[Sequence[float]], base_name: str, unit: str = "ms") -> bytes:
    """For an A/B run: per benchmark, the base's and the current side's trial medians."""
    figure = _figure(2 * len(labels))
    axes = figure.add_subplot()
    rows = len(labels)
    for side, (data, name, color) in enumerate(((base, base_name, COLORS[1]),
                                                (current, "this tree", COLORS[0]))):
        positions = [3 * (rows - 1 - i) + 1.7 - side * 0.9 for i in range(rows)]
        boxes = axes.boxplot([list(d) for d in data], positions=positions, **_horizontal(),
                             widths=0.7, patch_artist=True, whis=(0, 100))
        for patch in boxes["boxes"]:
            patch.set_facecolor(color)
            patch.set_alpha(0.6)
        axes.plot([], [], color=color, linewidth=6, alpha=0.6, label=name)
    axes.set_yticks([3 * (rows - 1 - i) + 1.25 for i in range(rows)], list(labels))
    _spread_axis(axes, [v for d in (*base, *current) for v in d])
    axes.set_xlabel(f"trial median, {unit}")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(fontsize=8, loc="lower right")
    return _png(figure)


def history(title: str, labels: Sequence[str], median: Sequence[float], tail: Sequence[float],
            fired: Sequence[bool], unit: str, tail_name: str = "p90",
            changes: Sequence[int] = ()) -> bytes:
    """A benchmark's median and tail across versions (oldest left); versions where the gate
    fired are ringed in the regression color, change points drawn as dotted lines before the
    first version at the new level."""
    figure = _figure(0, min_height=3.2)
    axes = figure.add_subplot()
    x = list(range(len(labels)))
    axes.plot(x, list(median), marker="o", color=COLORS[0], label="median")
    axes.plot(x, list(tail), marker=".", linestyle="--", color=COLORS[1], label=tail_name)
    hits = [i for i in x if fired[i]]
    if hits:
        axes.scatter(hits, [median[i] for i in hits], s=160, facecolors="none",
                     edgecolors=REGRESSION_COLOR, linewidths=2, label="gate fired", zorder=3)
    for number, index in enumerate(changes):
        axes.axvline(index - 0.5, color=REGRESSION_COLOR, linestyle=":", linewidth=1.5,
                     label="change point" if number == 0 else None)
    axes.set_xticks(x, list(labels), rotation=30, ha="right", fontsize=7)
    _spread_axis(axes, [*median, *tail], axis="y")
    axes.set_ylabel(unit)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    return _png(figure)
