"""One figure of the benchmark's report: a measure beside its floor or peer and its target.

The section modules (`report_cold`, `report_load`) and the sections that report for
themselves (`telemetry`) build these; `report` orders them into the table and the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    section: str
    name: str
    ours: str
    against: str
    target: str
    met: bool | None  # None: no target, shown for context
    values: dict[str, Any] = field(default_factory=dict)


def verdict(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "MISSED")


def signed(value: float) -> str:
    """A difference with its sign: +12 or -3."""
    return f"{value:+.0f}"
