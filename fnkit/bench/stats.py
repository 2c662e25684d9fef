"""Percentiles for the benchmark's samples (nearest rank on sorted data: no interpolation)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The value below which `p` percent of the sorted samples fall (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, max(0, math.ceil(len(sorted_values) * p / 100) - 1))
    return float(sorted_values[index])


def median(values: Sequence[float]) -> float:
    return percentile(sorted(values), 50)
