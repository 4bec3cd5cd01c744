"""The server-drawn charts: gridlines at round values that include zero, every label escaped."""

from __future__ import annotations

import itertools
import re

from hypothesis import given
from hypothesis import strategies as st

from finloop.console import charts

#: What the console plots: amounts in major units to the cent, counts, ratios.
finite = st.integers(min_value=-10**12, max_value=10**12).map(lambda cents: cents / 100)


@given(finite, finite)
def test_ticks_cover_the_values_and_zero_in_even_steps(a: float, b: float) -> None:
    low, high = min(a, b), max(a, b)
    ticks = charts._ticks(low, high)
    assert ticks[0] <= min(low, 0.0) and ticks[-1] >= max(high, 0.0)
    steps = [later - earlier for earlier, later in itertools.pairwise(ticks)]
    assert min(steps) > 0 and max(steps) - min(steps) <= 1e-9 * max(steps)
    assert any(abs(tick) < 1e-6 * max(1.0, abs(ticks[-1] - ticks[0])) for tick in ticks)
    assert len(ticks) <= 12


def test_labels_are_escaped_and_negative_bars_hang_below_zero() -> None:
    svg = str(charts.bar_chart([("<script>", -5), ("ok", 10)], title="a & b"))
    assert "<script>" not in svg and "&lt;script&gt;" in svg and "a &amp; b" in svg
    heights = [float(h) for h in re.findall(r'<rect x="[^"]+" y="[^"]+" width="[^"]+" height="([^"]+)"', svg)]
    assert heights[1] > heights[0] > 0  # 10 is drawn taller than 5


def test_a_line_chart_leaves_a_gap_for_missing_values() -> None:
    svg = str(charts.line_chart({"rate": [("00", 0.5), ("01", None), ("02", 0.7)]}, y_format=charts.pct_axis))
    path = re.search(r'<path d="([^"]+)"', svg).group(1)  # type: ignore[union-attr]
    assert path.count("M") == 2 and "L" not in path
