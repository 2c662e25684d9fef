"""shared.tracecontext.parse checks its two headers without regexes (none to compile at a cold
start); the rule is still the patterns it used to compile, so every case here is parsed both
ways: by `parse` and by the regexes with the same rules after the match, and the two must agree.
"""

from __future__ import annotations

import itertools
import re

import pytest

from shared.tracecontext import TraceIds, parse

TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?\Z")
CLOUD = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([0-9]+))?\Z")
ZERO_TRACE, ZERO_SPAN = "0" * 32, "0" * 16


def by_regex(traceparent: str | None, cloud: str | None) -> TraceIds | None:
    """The parse as it was written with the patterns."""
    if traceparent:
        found = TRACEPARENT.match(traceparent.strip())
        if found is not None:
            version, trace_id, span_id, flags, rest = found.groups()
            if (
                version != "ff"
                and not (version == "00" and rest)
                and trace_id != ZERO_TRACE
                and span_id != ZERO_SPAN
            ):
                return TraceIds(trace_id, span_id, bool(int(flags, 16) & 1), True)
    if cloud:
        found = CLOUD.match(cloud.strip())
        if found is not None:
            trace_id, span, options = found.groups()
            trace_id = trace_id.lower()
            if trace_id == ZERO_TRACE:
                return None
            span_id = f"{int(span):016x}" if span and 0 < int(span) < 2**64 else None
            return TraceIds(trace_id, span_id, options == "1")
    return None


TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"
TRACEPARENTS = [
    None,
    "",
    f"00-{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-00",
    f"  00-{TRACE}-{SPAN}-01\n",
    f"01-{TRACE}-{SPAN}-03-future-fields",
    f"01-{TRACE}-{SPAN}-01-",
    f"01-{TRACE}-{SPAN}-01-a\nb",
    f"01-{TRACE}-{SPAN}-01x",
    f"00-{TRACE}-{SPAN}-01-extra",  # version 00 allows nothing after the flags
    f"ff-{TRACE}-{SPAN}-01",
    f"00-{ZERO_TRACE}-{SPAN}-01",
    f"00-{TRACE}-{ZERO_SPAN}-01",
    f"00-{TRACE.upper()}-{SPAN}-01",  # uppercase hex is not a traceparent
    f"00-{TRACE[:-1]}g-{SPAN}-01",
    f"00-{TRACE[:-1]}-{SPAN}0-01",  # hyphens in the wrong places, same length
    f"00-{TRACE}-{SPAN[:-1]}--01",
    f"0--{TRACE}-{SPAN}-01",
    f"00_{TRACE}-{SPAN}-01",
    f"00-{TRACE}-{SPAN}-1",
    f"00-{TRACE}-{SPAN}",
    f"00-{TRACE}-{SPAN}-0\u0661",  # an Arabic-Indic digit: a digit to str.isdigit, not to [0-9a-f]
    "garbage",
]
CLOUDS = [
    None,
    "",
    TRACE,
    TRACE.upper(),
    f"{TRACE}/1",
    f"{TRACE}/123;o=1",
    f"{TRACE}/123;o=0",
    f"{TRACE};o=1",
    f"{TRACE}/0;o=1",
    f"{TRACE}/{2**64};o=1",
    f"{TRACE}/{2**64 - 1}",
    f"{TRACE}/{'9' * 20}",
    f"{TRACE}/{'9' * 21}",
    f"{TRACE}/",
    f"{TRACE}/;o=1",
    f"{TRACE}/12;o=",
    f"{TRACE}/12;o=1;o=1",
    f"{TRACE}/12;x=1",
    f"{TRACE}/1a",
    f"{TRACE}/\u0661\u0662",  # Arabic-Indic digits: not [0-9]
    f"{TRACE}/12;o=\u0661",
    f"{TRACE}x",
    f"{TRACE}/12\n",
    f" {TRACE}/12;o=1 ",
    ZERO_TRACE,
    f"{TRACE[:-1]}/1",
    f"{TRACE[:-1]}g",
]


@pytest.mark.parametrize(("traceparent", "cloud"), list(itertools.product(TRACEPARENTS, CLOUDS)))
def test_parse_follows_the_patterns(traceparent: str | None, cloud: str | None) -> None:
    assert parse(traceparent, cloud) == by_regex(traceparent, cloud)


def test_the_cases_cover_each_outcome() -> None:
    """The corpus reaches every branch: valid traceparents, refused ones falling back to the
    Cloud header, Cloud headers with and without a span, and nothing at all."""
    found = [by_regex(t, c) for t, c in itertools.product(TRACEPARENTS, CLOUDS)]
    assert any(ids is not None and ids.w3c for ids in found)
    assert any(ids is not None and not ids.w3c and ids.span_id for ids in found)
    assert any(ids is not None and not ids.w3c and ids.span_id is None for ids in found)
    assert any(ids is None for ids in found)
    assert parse(f"00-{TRACE}-{SPAN}-01", None) == TraceIds(TRACE, SPAN, True, True)
    assert parse(None, f"{TRACE}/123;o=1") == TraceIds(TRACE, f"{123:016x}", True)
