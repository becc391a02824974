"""``deltas`` (the fast one the collector runs) against a plain per-event recount."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from tests.storage.helpers import POLICY
from tests.strategies import valid_events

from optin.analytics.rollups import Key, _bucket_text, _text, deltas, duration_bucket


def plain_deltas(events: list[dict[str, Any]]) -> Counter[Key]:
    """Every rollup key of every event, one at a time: the definition ``deltas`` must meet."""
    out: Counter[Key] = Counter()
    yes_no = {True: "yes", False: "no"}
    for ev in events:
        day = int(ev["time"]) // 86400
        kind = ev["kind"]
        v, os_, arch, py, ci, inter = (
            ev[k] for k in ("app_version", "os", "arch", "python", "ci", "interactive")
        )
        if kind == "command":
            cmd, outcome = ev["command"], ev["outcome"]
            out[(day, "outcome", cmd, outcome)] += 1
            out[(day, "release", v, outcome)] += 1
            out[(day, "duration", cmd, str(duration_bucket(int(ev["duration_ms"]))))] += 1
            if ev["slow"]:
                out[(day, "slow", cmd, "")] += 1
            if ev.get("error") is not None:
                out[(day, "error", cmd, ev["error"])] += 1
            for option in ev["options"]:
                out[(day, "option", cmd, option)] += 1
            for option, value in ev.get("values", {}).items():
                out[(day, "value", cmd, f"{option}|{value}")] += 1
            for dim, value in ev["dimensions"].items():
                out[(day, "dimension", cmd, f"{dim}|{value}|{outcome}")] += 1
            group = "command"
        elif kind == "event":
            name = ev["name"]
            out[(day, "event", name, "")] += 1
            for prop, value in ev["properties"].items():
                out[(day, "property", name, f"{prop}|{_text(value)}")] += 1
            for dim, value in ev["dimensions"].items():
                out[(day, "dimension", f"event:{name}", f"{dim}|{value}|")] += 1
            group = "event"
        else:
            out[(day, "active", ev["period"], "")] += 1
            group = f"active:{ev['period']}"
        out[(day, "platform", group, f"{v}|{os_}|{arch}|{py}|{int(ci)}|{int(inter)}")] += 1
        metric = {"command": "platform_runs", "active:day": "platform_active"}.get(group)
        if metric:
            for field, value in (("version", v), ("os", os_), ("arch", arch), ("python", py)):
                out[(day, metric, field, value)] += 1
            out[(day, metric, "ci", yes_no[bool(ci)])] += 1
            out[(day, metric, "interactive", yes_no[bool(inter)])] += 1
    return out


@settings(max_examples=150, deadline=None)
@given(st.lists(valid_events(POLICY), max_size=40), st.randoms(use_true_random=False))
def test_deltas_count_every_key_of_every_event(events: list[dict[str, Any]], rnd: Any) -> None:
    # Repeats (the same shape many times, as in a real batch) and any order.
    batch = events + [dict(e) for e in events[: len(events) // 2]]
    rnd.shuffle(batch)
    assert deltas(batch) == plain_deltas(batch)
    assert all(n > 0 for n in deltas(batch).values())


@given(
    st.one_of(
        st.integers(0, 70_000),
        st.integers(0, 10**7),
        st.integers(0, 70_000).map(float),
    )
)
def test_remembered_bucket_texts_equal_the_formula(ms: int | float) -> None:
    """Whole durations under a minute have their bucket's text remembered: the same text, when
    it is first computed and when it is remembered."""
    want = str(duration_bucket(int(ms)))
    assert _bucket_text(ms) == want
    assert _bucket_text(ms) == want
