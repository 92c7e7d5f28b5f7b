"""Charts for advocates, drawn with matplotlib's Agg backend as PNG or SVG bytes.

The values come in already suppressed (sums of published count atoms); a chart only draws
them. SVG keeps text as paths, so it shows the same everywhere and loads no font.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

FORMATS = ("png", "svg")
#: Colour-blind-safe palette (Okabe-Ito).
PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#F0E442", "#000000")


def _render(fig: Figure, fmt: str) -> bytes:
    if fmt not in FORMATS:
        raise ValueError("a chart is png or svg")
    out = io.BytesIO()
    metadata = {"Date": None} if fmt == "svg" else {"Software": None}
    fig.savefig(out, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
    return out.getvalue()


def _figure(title: str) -> tuple[Figure, object]:
    # matplotlib is loaded at the first chart: it takes most of half a second, which the service
    # and every CLI command would otherwise pay at start.
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=11)
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def stacked_bars(
    title: str,
    labels: Sequence[str],
    series: Mapping[str, Sequence[int]],
    fmt: str,
    ylabel: str = "events",
    empty: str = "no published counts",
) -> bytes:
    """Return a stacked bar chart: one bar per label, one colour per series.

    Parameters
    ----------
    title : str
        The chart's title.
    labels : sequence of str
        The x axis (months, hours, weekdays), in order.
    series : mapping of str to sequence of int
        Per series (category, perpetrator type), a value per label.
    fmt : str
        ``png`` or ``svg``.
    ylabel : str
        The y axis label.
    empty : str
        What the chart says when there is no series.

    """
    fig, ax = _figure(title)
    bottom = [0] * len(labels)
    for i, (name, values) in enumerate(series.items()):
        ax.bar(labels, values, bottom=bottom, label=name, color=PALETTE[i % len(PALETTE)])  # type: ignore[attr-defined]
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_ylabel(ylabel)  # type: ignore[attr-defined]
    if series:
        ax.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))  # type: ignore[attr-defined]
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)  # type: ignore[attr-defined]
    fit_labels(ax, labels)
    return _render(fig, fmt)


def grouped_bars(
    title: str, labels: Sequence[str], groups: Mapping[str, Sequence[int]], fmt: str, ylabel: str = "events"
) -> bytes:
    """Return side-by-side bars: per label, one bar per group (two periods compared)."""
    fig, ax = _figure(title)
    width = 0.8 / max(len(groups), 1)
    for i, (name, values) in enumerate(groups.items()):
        xs = [x + i * width for x in range(len(labels))]
        ax.bar(xs, values, width=width, label=name, color=PALETTE[i % len(PALETTE)])  # type: ignore[attr-defined]
    ax.set_xticks([x + width * (len(groups) - 1) / 2 for x in range(len(labels))], labels)  # type: ignore[attr-defined]
    ax.set_ylabel(ylabel)  # type: ignore[attr-defined]
    ax.legend(fontsize=8, frameon=False)  # type: ignore[attr-defined]
    fit_labels(ax, labels)
    return _render(fig, fmt)


def fit_labels(ax: object, labels: Sequence[str]) -> None:
    """Slant the x labels when they would overlap (a year of months), stand them up when many."""
    if len(labels) > 24 or (len(labels) > 8 and max(map(len, labels), default=0) > 3):
        rotation = 90 if len(labels) > 24 else 45
        for label in ax.get_xticklabels():  # type: ignore[attr-defined]
            label.set_rotation(rotation)
            label.set_horizontalalignment("right" if rotation == 45 else "center")
            label.set_fontsize(8)
