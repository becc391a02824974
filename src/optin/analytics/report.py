"""``optin report``: the collector's figures in the terminal (or as JSON), from the rollups only."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from optin.analytics import queries as q
from optin.policy import Policy
from optin.storage import Storage, StorageError, load_policies, open_storage

__all__ = ["build", "main", "render"]

_TOP = 12


def build(db: Storage, app: str, days: int, policy: Policy | None = None) -> dict[str, Any] | None:
    """Every figure of the report for one app, as JSON-ready data; None if the app has none."""
    w = q.window(db, app, days)
    if w is None:
        return None
    act = q.activity(db, app, w)
    cmds = q.commands(db, app, w)
    basis, plat = q.platforms(db, app, w)
    used, unused = q.options(db, app, w, policy)
    return {
        "app": app,
        "window": {"first": q.iso(w.first), "last": q.iso(w.last), "days": w.days},
        "active": {
            "dau": {q.iso(d): n for d, n in act.dau.items()},
            "dau_last": act.dau_last,
            "dau_mean": round(act.dau_mean, 2),
            "wau_low": act.wau_low,
            "wau_high": act.wau_high,
            "mau": act.mau,
        },
        "commands": [{**asdict(c), "failure_rate": round(c.failure_rate, 4)} for c in cmds],
        "releases": [
            {"version": v, "runs": n, "failure_rate": round(r, 4)}
            for v, n, r in q.releases(db, app, w)
        ],
        "platforms": {"basis": basis, **plat},
        "errors": [{"error": e, "command": c, "count": n} for e, c, n in q.errors(db, app, w)],
        "options": [
            {
                "command": o.command,
                "option": o.option,
                "uses": o.uses,
                "share": round(o.share, 4),
                "values": o.values,
            }
            for o in used
        ],
        "options_never_used": (
            None if policy is None else [{"command": c, "option": o} for c, o in unused]
        ),
        "dimensions": q.dimensions(db, app, w),
        "events": {
            name: {"count": n, "properties": props}
            for name, (n, props) in q.events(db, app, w).items()
        },
        "spikes": [
            {
                **asdict(s),
                "day": q.iso(s.day),
                "rate": round(s.rate, 4),
                "baseline": round(s.baseline, 4),
                "z": round(s.z, 2),
            }
            for s in q.spikes(db, app, w)
        ],
    }


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    return f"{value / 60_000:.1f} min"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def _shares(counts: dict[str, int], limit: int = 6) -> str:
    total = sum(counts.values())
    if not total:
        return "-"
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    parts = [f"{k} {_pct(n / total)}" for k, n in ordered[:limit]]
    if len(counts) > limit:
        parts.append(f"+{len(counts) - limit} more")
    return ", ".join(parts)


def render(data: dict[str, Any]) -> str:
    """The terminal text of :func:`build`'s data."""
    win, act = data["window"], data["active"]
    lines = [
        f"{data['app']}: {win['first']} .. {win['last']} ({win['days']} days, from daily rollups)",
        "",
        f"Active   DAU {act['dau_last']} on {win['last']} (mean {act['dau_mean']:.1f}/day)   "
        f"WAU {act['wau_low']}..{act['wau_high']}   "
        + "   ".join(f"MAU {m} {n}" for m, n in act["mau"].items()),
        "",
        f"{'Command':<28}{'runs':>9}{'fail':>8}{'p50':>10}{'p95':>10}{'slow':>7}{'struggle':>11}",
    ]
    for c in data["commands"][:_TOP]:
        struggle = f"{c['recovered']}/{c['struggled']}" if c["struggled"] else "-"
        lines.append(
            f"  {c['command']:<26}{c['runs']:>9}{_pct(c['failure_rate']):>8}"
            f"{_ms(c['p50_ms']):>10}{_ms(c['p95_ms']):>10}{c['slow']:>7}{struggle:>11}"
        )
    if len(data["commands"]) > _TOP:
        lines.append(f"  ... {len(data['commands']) - _TOP} more commands")
    lines.append("  (fail: failure or usage error; struggle: session-days recovered/failed)")
    plat = data["platforms"]
    basis = "active install-days" if plat["basis"] == "active:day" else "command runs"
    lines += ["", f"Platforms (share of {basis})"]
    for name in ("version", "os", "arch", "python", "ci"):
        lines.append(f"  {name:<10}{_shares(plat[name])}")
    if data["releases"]:
        lines += [
            "",
            "Releases   "
            + ", ".join(
                f"{r['version']} {r['runs']} runs {_pct(r['failure_rate'])} fail"
                for r in data["releases"][:6]
            ),
        ]
    lines += ["", "Top errors"]
    lines += [f"  {e['count']:>8}  {e['error']} ({e['command']})" for e in data["errors"][:8]] or [
        "  none"
    ]
    lines += ["", "Options"]
    lines += [
        f"  {o['command']} --{o['option']}: {o['uses']} uses ({_pct(o['share'])} of runs)"
        + (f"; values {_shares(o['values'], 4)}" if o["values"] else "")
        for o in data["options"][:_TOP]
    ] or ["  none used"]
    never = data["options_never_used"]
    if never is None:
        lines.append("  (pass --policies to list the declared options nobody used)")
    else:
        lines.append(
            "  never used: "
            + (", ".join(f"{o['command']} --{o['option']}" for o in never) if never else "none")
        )
    if data["events"]:
        lines += ["", "Custom events"]
        for name, ev in data["events"].items():
            props = "; ".join(f"{p} {_shares(v, 4)}" for p, v in ev["properties"].items())
            lines.append(f"  {name}: {ev['count']}" + (f" ({props})" if props else ""))
    lines += ["", "Error-rate spikes (vs the previous 14 days)"]
    lines += [
        f"  {s['day']}  {s['command']}: {_pct(s['rate'])} of {s['runs']} runs "
        f"(baseline {_pct(s['baseline'])}, z {s['z']:.1f})"
        for s in data["spikes"][:8]
    ] or ["  none"]
    return "\n".join(lines) + "\n"


def main(args: argparse.Namespace) -> int:
    """Print the report for ``args.app`` (or every app) over ``args.days`` days."""
    if args.days < 1:
        print("optin report: --days must be at least 1", file=sys.stderr)
        return 2
    policies = load_policies(args.policies) if args.policies else {}
    try:
        with open_storage(args.db) as db:
            apps = [args.app] if args.app else db.apps()
            reports = [build(db, app, args.days, policies.get(app)) for app in apps]
    except StorageError as exc:
        print(f"optin report: {exc}", file=sys.stderr)
        return 1
    found = [r for r in reports if r is not None]
    if args.json:
        print(json.dumps(found if not args.app else (found[0] if found else None), indent=2))
    else:
        if not found:
            which = f"app {args.app!r}" if args.app else "any app"
            print(f"optin report: no data for {which} in {args.db}", file=sys.stderr)
            return 1
        sys.stdout.write("\n".join(render(r) for r in found))
    return 0 if found else 1
