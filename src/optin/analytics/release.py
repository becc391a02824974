"""Disclosure control for the open data: noise, suppression, then derived figures.

Each count table of :mod:`optin.analytics.tables` goes through:

1. optional noise (``epsilon``): OpenDP's Laplace mechanism (``make_laplace``, which samples the
   discrete Laplace distribution for integer counts) over the whole vector of the table's count
   cells, with ``scale = sensitivity / epsilon``; OpenDP's privacy map is asked to confirm the
   result is ``epsilon``-DP for that L1 sensitivity. Tables whose keys are not a closed list from
   the policy (app and Python versions) use ``make_laplace_threshold`` instead, with the
   smallest threshold >= ``min_count`` for which OpenDP's map gives delta <= :data:`DELTA`.
   Noisy counts are clamped at 0;
2. suppression: any count below ``min_count`` becomes empty (None), and so does any rate whose
   numerator or denominator is empty; a row whose counts are all empty is left out unless its
   key comes from the policy (options nobody uses stay listed);
3. derivation: rates and percentiles are computed from the released (noisy) counts, so they
   are post-processing and cost no privacy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from optin.analytics.queries import percentile
from optin.analytics.tables import Field, Table

__all__ = ["DELTA", "Noise", "Released", "durations", "release"]

#: The delta of the thresholding mechanism used for open-keyed tables.
DELTA = 1e-6


class Noise:
    """Differential-privacy noise from OpenDP, for one ``epsilon`` per released table."""

    def __init__(self, epsilon: float) -> None:
        if not (epsilon > 0 and math.isfinite(epsilon)):
            raise ValueError(f"epsilon must be a positive number, got {epsilon!r}")
        import opendp.prelude as dp

        dp.enable_features("contrib")
        self.dp = dp
        self.epsilon = epsilon

    def vector(self, counts: Sequence[int], sensitivity: int) -> list[int]:
        """The Laplace mechanism over a vector with L1 ``sensitivity``; clamped at 0."""
        if not counts:
            return []
        dp = self.dp
        space = dp.vector_domain(dp.atom_domain(T=int)), dp.l1_distance(T=int)
        measurement = dp.m.make_laplace(*space, scale=sensitivity / self.epsilon)
        assert measurement.map(sensitivity) <= self.epsilon * (1 + 1e-9)
        return [max(0, int(v)) for v in measurement(list(counts))]

    def threshold(
        self, counts: Mapping[str, int], cells: int, sensitivity: int, min_count: int
    ) -> tuple[dict[str, int], int]:
        """The Laplace threshold mechanism: noisy counts of the keys that pass, and the threshold.

        ``cells`` is how many keys one event can touch (L0), ``sensitivity`` the L1 bound; a
        single key changes by at most 1 (L-infinity).
        """
        dp = self.dp
        space = (
            dp.map_domain(dp.atom_domain(T=str), dp.atom_domain(T=int)),
            dp.l01inf_distance(dp.absolute_distance(T=int)),
        )
        scale = sensitivity / self.epsilon
        threshold = max(1, min_count)
        while True:
            measurement = dp.m.make_laplace_threshold(*space, scale=scale, threshold=threshold)
            eps, delta = measurement.map((cells, sensitivity, 1))
            if delta <= DELTA:
                break
            threshold = math.ceil(threshold * 1.25) + 1
        assert eps <= self.epsilon * (1 + 1e-9)
        kept = {k: v for k, v in counts.items() if v > 0}
        released = measurement(kept) if kept else {}
        return {k: max(0, int(v)) for k, v in released.items()}, threshold


@dataclass
class Released:
    """A table as published: counts noised and suppressed, rates and percentiles derived."""

    table: Table
    rows: list[dict[str, Any]]
    mechanism: str
    #: The counts after noise, before suppression (what percentiles are read from).
    noisy: list[dict[str, Any]] = field(default_factory=list)


def _key_fields(table: Table) -> list[str]:
    return [f.name for f in table.fields if not f.count and f.rate is None]


def release(table: Table, min_count: int, noise: Noise | None) -> Released:
    """Noise, clamp, suppress and derive one table (see the module docstring)."""
    counts = table.count_fields
    rows = [dict(r) for r in table.rows]
    mechanism = "none"
    if noise is not None and table.open_keys:
        keys = _key_fields(table)
        cells = {
            "|".join(str(r[k]) for k in keys) + "|" + c: int(r[c]) for r in rows for c in counts
        }
        # Each cell moves by at most 1 (L-infinity), so at most ``sensitivity`` cells move (L0).
        out, threshold = noise.threshold(cells, table.sensitivity, table.sensitivity, min_count)
        for r in rows:
            base = "|".join(str(r[k]) for k in keys) + "|"
            for c in counts:
                r[c] = out.get(base + c)
        mechanism = (
            f"OpenDP make_laplace_threshold, epsilon {noise.epsilon:g}, delta {DELTA:g}, "
            f"threshold {threshold}, L1 sensitivity {table.sensitivity}"
        )
    elif noise is not None:
        flat = noise.vector([int(r[c]) for r in rows for c in counts], table.sensitivity)
        for i, r in enumerate(rows):
            for j, c in enumerate(counts):
                r[c] = flat[i * len(counts) + j]
        mechanism = (
            f"OpenDP make_laplace (discrete Laplace), epsilon {noise.epsilon:g}, "
            f"L1 sensitivity {table.sensitivity}, scale {table.sensitivity / noise.epsilon:g}"
        )
    noisy = [dict(r) for r in rows]
    for r in rows:
        for c in counts:
            if r[c] is not None and r[c] < min_count:
                r[c] = None
    kept = [
        r
        for i, r in enumerate(rows)
        if i in table.declared or any(r[c] is not None for c in counts)
    ]
    for r in kept:
        for f in table.fields:
            if f.rate is not None:
                num, den = r[f.rate[0]], r[f.rate[1]]
                # Every rate is a proportion: noise can push it past 1, clamping is post-processing.
                r[f.name] = round(min(1.0, num / den), 4) if num is not None and den else None
    out_rows = [{f.name: r.get(f.name) for f in table.fields} for r in kept]
    return Released(table, out_rows, mechanism, noisy)


def durations(histogram: Released, min_count: int, noisy: bool) -> Released:
    """p50 / p95 per command from the released histogram.

    Exact counts: the whole histogram, as ``optin report`` does. Noisy counts: only the buckets
    that pass suppression, because clamped noise in a hundred empty buckets would otherwise
    drag the upper percentiles out to days.
    """
    hists: dict[str, dict[int, int]] = {}
    source = histogram.rows if noisy else histogram.noisy
    for r in source:
        hists.setdefault(r["command"], {})[int(r["bucket"])] = int(r["runs"] or 0)
    rows: list[dict[str, Any]] = []
    for cmd, hist in hists.items():
        runs = sum(hist.values())
        if runs < min_count:
            continue
        p50, p95 = percentile(hist, 0.5), percentile(hist, 0.95)
        rows.append(
            {
                "command": cmd,
                "runs": runs,
                "p50_ms": None if p50 is None else round(p50, 1),
                "p95_ms": None if p95 is None else round(p95, 1),
            }
        )
    table = Table(
        "durations",
        "Duration percentiles per command",
        "Median and 95th percentile of the run time per command, interpolated inside the "
        "buckets of `duration_histogram` (exact counts before suppression; with noise, only "
        "the buckets that pass suppression); commands with fewer runs than the threshold are "
        "left out.",
        [
            Field("command", "string", "command path"),
            Field("runs", "integer", "runs (sum of the released histogram)", count=True),
            Field("p50_ms", "number", "median duration, ms"),
            Field("p95_ms", "number", "95th percentile duration, ms"),
        ],
        rows,
        sensitivity=0,
    )
    return Released(table, rows, f"derived from duration_histogram ({histogram.mechanism})")
