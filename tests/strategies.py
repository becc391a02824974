"""Hypothesis strategies for events: valid ones built from a policy, and near-misses of them."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from optin.events import ARCHES, OSES, OUTCOMES, TIME_MAX, TIME_MIN
from optin.policy import OTHER, UNKNOWN_COMMAND, Policy

hexes = st.text("0123456789abcdef", min_size=1, max_size=40)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)


def _hour() -> st.SearchStrategy[int]:
    return st.integers(TIME_MIN // 3600, TIME_MAX // 3600).map(lambda h: h * 3600)


def _common(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "id": st.text("0123456789abcdef", min_size=32, max_size=32),
            "kind": st.just(kind),
            "time": _hour(),
            "app_version": st.from_regex(r"\A[0-9][0-9a-z.+_-]{0,8}\Z"),
            "os": st.sampled_from(OSES),
            "arch": st.sampled_from(ARCHES),
            "python": st.sampled_from(["3.11", "3.12", "3.13"]),
            "ci": st.booleans(),
            "interactive": st.booleans(),
        }
    )


def _dims(policy: Policy) -> st.SearchStrategy[dict[str, str]]:
    return st.fixed_dictionaries(
        {},
        optional={n: st.sampled_from((*d.values, OTHER)) for n, d in policy.dimensions.items()},
    )


def valid_events(policy: Policy) -> st.SearchStrategy[dict[str, Any]]:
    """Events the policy allows, of every kind."""
    session = st.text("0123456789abcdef", min_size=16, max_size=16)
    active = st.builds(
        lambda c, p: {**c, "period": p}, _common("active"), st.sampled_from(["day", "month"])
    )

    @st.composite
    def command(draw: st.DrawFn) -> dict[str, Any]:
        path = draw(st.sampled_from([*policy.commands, UNKNOWN_COMMAND]))
        cmd = policy.commands.get(path)
        options = cmd.options if cmd else {}
        event = draw(_common("command"))
        given = draw(st.lists(st.sampled_from(sorted(options)), unique=True)) if options else []
        event.update(
            session=draw(session),
            command=path,
            options=given,
            dimensions=draw(_dims(policy)),
            outcome=draw(st.sampled_from(OUTCOMES)),
            exit_code=draw(st.integers(0, 255)),
            duration_ms=draw(st.integers(0, 10**7)),
            slow=draw(st.booleans()),
        )
        valued = {n: o.values for n, o in options.items() if o.values}
        if valued and draw(st.booleans()):
            event["values"] = {
                n: draw(st.sampled_from((*v, OTHER)))
                for n, v in valued.items()
                if draw(st.booleans())
            }
        if cmd and cmd.positional_count and draw(st.booleans()):
            event["positionals"] = draw(st.integers(0, 50))
        if draw(st.booleans()):
            event["error"] = draw(st.sampled_from((*policy.errors, OTHER)))
        return event

    @st.composite
    def custom(draw: st.DrawFn) -> dict[str, Any]:
        name = draw(st.sampled_from(sorted(policy.events)))
        props: dict[str, Any] = {}
        for p in policy.events[name].properties.values():
            if not draw(st.booleans()):
                continue
            if p.type == "enum":
                props[p.name] = draw(st.sampled_from((*p.values, OTHER)))
            elif p.type == "bool":
                props[p.name] = draw(st.booleans())
            else:
                props[p.name] = draw(st.sampled_from((0, *p.buckets)))
        event = draw(_common("event"))
        event.update(
            session=draw(session), name=name, properties=props, dimensions=draw(_dims(policy))
        )
        return event

    kinds = [active, command()]
    if policy.events:
        kinds.append(custom())
    return st.one_of(kinds)


@st.composite
def mutated_events(draw: st.DrawFn, policy: Policy) -> Any:
    """A valid event with one or two things changed: most are invalid, some stay valid."""
    event: Any = draw(valid_events(policy))
    for _ in range(draw(st.integers(1, 2))):
        if not isinstance(event, dict) or not event:
            break
        action = draw(st.sampled_from(["drop", "add", "replace", "replace_nested", "whole"]))
        key = draw(st.sampled_from(sorted(event)))
        if action == "drop":
            del event[key]
        elif action == "add":
            event[draw(st.text(max_size=12))] = draw(json_values)
        elif action == "replace":
            event[key] = draw(json_values | st.sampled_from(["other", "ic", "3.12", "linux", 3600]))
        elif action == "replace_nested" and isinstance(event[key], dict | list) and event[key]:
            inner = event[key]
            if isinstance(inner, dict):
                inner[draw(st.sampled_from(sorted(inner)))] = draw(json_values)
            else:
                inner[draw(st.integers(0, len(inner) - 1))] = draw(json_values)
        elif action == "whole":
            event = draw(json_values)
    return event
