"""A small data set whose figures are known by construction (used by the query and report tests).

21 days from 2026-01-05 (day D0). Every day: ``10 + d % 3`` day pings (linux for all but one, which
is macos), 20 runs of ``start`` (2 failing with ConnectionError, 1 with ``--background``), and
30 runs of ``deploy``, 1 failing, except on the last day where 15 fail (a spike). On day 0 a session
fails ``start`` at 02:00 and succeeds at 03:00 (struggle, recovered). 25 month pings on day 0.
"""

from __future__ import annotations

import itertools
from typing import Any

from tests.storage.helpers import T0, active, command

DAYS = 21
D0 = T0 // 86400
LAST = D0 + DAYS - 1


def known_events() -> list[dict[str, Any]]:
    ids = itertools.count(1)
    out: list[dict[str, Any]] = []
    for d in range(DAYS):
        h = 24 * d + 9
        for i in range(10 + d % 3):
            out.append(active(next(ids), hour=h, os="macos" if i == 0 else "linux"))
        for i in range(20):
            failing = i < 2
            out.append(
                command(
                    next(ids),
                    hour=h + 1,
                    session=f"{d:08x}{i:08x}",
                    outcome="failure" if failing else "success",
                    exit_code=1 if failing else 0,
                    duration_ms=1000,
                    options=["background"] if i == 5 else [],
                    **({"error": "ConnectionError"} if failing else {}),
                )
            )
        for i in range(30):
            failing = i < (15 if d == DAYS - 1 else 1)
            out.append(
                command(
                    next(ids),
                    hour=h + 2,
                    path="deploy",
                    session=f"{d:08x}{i:08x}",
                    outcome="failure" if failing else "success",
                    exit_code=1 if failing else 0,
                    duration_ms=20_000,
                    slow=True,
                    dimensions={"network": "ic"},
                    **({"error": "ProviderNotFound"} if failing else {}),
                )
            )
    out += [active(next(ids), hour=12, period="month") for _ in range(25)]
    out.append(command(next(ids), hour=2, session="f" * 16, outcome="failure", exit_code=1))
    out.append(command(next(ids), hour=3, session="f" * 16))
    return out
