"""Chart axes stay readable: a year of months slants its labels, a few short labels stay level."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from mapsvc.core.charts import fit_labels


@pytest.mark.parametrize(
    ("labels", "rotation"),
    [
        ([f"2026-{m:02d}" for m in range(1, 13)], 45),  # a year of months would overlap level
        ([f"{h:02d}" for h in range(24)], 0),  # hours are short
        (["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], 0),
        ([f"2024-{m:02d}" for m in range(1, 13)] + [f"2025-{m:02d}" for m in range(1, 13)] + ["2026-01"], 90),
    ],
)
def test_crowded_labels_are_turned(labels, rotation):
    ax = Figure().subplots()
    ax.bar(labels, [1] * len(labels))

    fit_labels(ax, labels)

    assert {label.get_rotation() for label in ax.get_xticklabels()} == {rotation}
