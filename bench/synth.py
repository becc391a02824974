"""Synthetic, valid events for benchmarks and tests: a population of installs over N days.

Each install has a fixed platform and version (upgraded now and then), a session per day, and
runs a handful of commands a day with realistic skew: a few commands dominate, most succeed,
failures are often followed by a retry that works (struggle), durations are log-normal.
Deterministic for a seed. Every event passes :func:`optin.events.validate_event`.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from optin.events import ARCHES, OSES
from optin.policy import OTHER, Policy

__all__ = ["synth_events"]

_VERSIONS = ["0.18.0", "0.19.0", "0.19.1", "0.20.0", "0.21.0", "0.21.1"]
_PYTHONS = ["3.10", "3.11", "3.12", "3.13"]


def synth_events(
    policy: Policy, n: int, *, days: int = 90, end_day: int = 20_400, seed: int = 1
) -> Iterator[dict[str, Any]]:
    """Yield about ``n`` events (within a few %) over ``days`` days ending on UTC day ``end_day``.

    Events come grouped the way clients upload them: per install, per day, in time order.
    """
    rnd = random.Random(seed)
    commands = sorted(policy.commands)
    weights = [1.0 / (i + 1) ** 1.2 for i in range(len(commands))]
    errors = [*policy.errors, OTHER]
    per_install_day = 6
    # About 6.6 events per install and day: a day ping, ~5 runs, retries, custom events.
    installs = max(1, round(n / (days * 6.6)))
    first = end_day - days + 1
    getrandbits = rnd.getrandbits
    for day in range(first, end_day + 1):
        for install in range(installs):
            prnd = random.Random(install * 7919 + seed)
            os_ = OSES[min(int(prnd.expovariate(1.2)), len(OSES) - 1)]
            arch = ARCHES[min(int(prnd.expovariate(1.5)), len(ARCHES) - 1)]
            python = prnd.choice(_PYTHONS)
            ci = prnd.random() < 0.15
            vi = min(len(_VERSIONS) - 1, int((day - first) / days * 4 + prnd.random() * 2))
            common = {
                "app_version": _VERSIONS[vi],
                "os": os_,
                "arch": arch,
                "python": python,
                "ci": ci,
                "interactive": not ci,
            }
            session = f"{getrandbits(64):016x}"
            hour = day * 86400 + rnd.randrange(8, 20) * 3600
            yield {
                "id": f"{getrandbits(128):032x}",
                "kind": "active",
                "time": hour,
                **common,
                "period": "day",
            }
            if (day - first) % 30 == install % 30:
                yield {
                    "id": f"{getrandbits(128):032x}",
                    "kind": "active",
                    "time": hour,
                    **common,
                    "period": "month",
                }
            for _ in range(rnd.randrange(1, 2 * per_install_day - 2)):
                path = rnd.choices(commands, weights)[0]
                cmd = policy.commands[path]
                roll = rnd.random()
                outcome = (
                    "success"
                    if roll < 0.86
                    else "failure"
                    if roll < 0.95
                    else "usage_error"
                    if roll < 0.99
                    else "interrupted"
                )
                duration = int(rnd.lognormvariate(6 + len(path) % 4, 1.1))
                event: dict[str, Any] = {
                    "id": f"{getrandbits(128):032x}",
                    "kind": "command",
                    "time": hour,
                    **common,
                    "session": session,
                    "command": path,
                    "options": [o for o in cmd.options if rnd.random() < 0.3],
                    "dimensions": {
                        d: rnd.choice((*dim.values, OTHER))
                        for d, dim in policy.dimensions.items()
                        if rnd.random() < 0.8
                    },
                    "outcome": outcome,
                    "exit_code": 0 if outcome == "success" else 1,
                    "duration_ms": min(duration, 7 * 86400 * 1000),
                    "slow": duration > policy.settings.slow_threshold_seconds * 1000,
                }
                values = {
                    o: rnd.choice(opt.values)
                    for o, opt in cmd.options.items()
                    if opt.values and o in event["options"]
                }
                if values:
                    event["values"] = values
                if cmd.positional_count:
                    event["positionals"] = rnd.randrange(0, 4)
                if outcome in ("failure", "usage_error"):
                    event["error"] = rnd.choice(errors)
                yield event
                if outcome != "success" and rnd.random() < 0.5:
                    retry = {
                        **event,
                        "id": f"{getrandbits(128):032x}",
                        "outcome": "success",
                        "exit_code": 0,
                        "time": min(hour + 3600, day * 86400 + 23 * 3600),
                    }
                    retry.pop("error", None)
                    yield retry
                if rnd.random() < 0.3:
                    hour = min(hour + 3600, day * 86400 + 23 * 3600)
            for name, edef in policy.events.items():
                if rnd.random() < 0.2:
                    props: dict[str, Any] = {}
                    for p in edef.properties.values():
                        if p.type == "bool":
                            props[p.name] = rnd.random() < 0.9
                        elif p.type == "enum":
                            props[p.name] = rnd.choice(p.values)
                        else:
                            props[p.name] = rnd.choice((0, *p.buckets))
                    yield {
                        "id": f"{getrandbits(128):032x}",
                        "kind": "event",
                        "time": hour,
                        **common,
                        "session": session,
                        "name": name,
                        "properties": props,
                        "dimensions": {},
                    }
