"""``<tool> telemetry on|off|local|status|show|upload|report``, framework-neutral.

``Telemetry.cli(argv)`` runs one of these and returns an exit status; integrations mount it as
a ``telemetry`` subcommand. None of them is recorded, and none of them asks the consent question.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from optin.client import consent, spool

if TYPE_CHECKING:
    from optin.client.telemetry import Telemetry

__all__ = ["USAGE", "run"]

USAGE = """usage: {tool} telemetry COMMAND

  on       share anonymous usage statistics with the maintainers
  local    record usage statistics for your own 'report' only; never send them
  off      record nothing; deletes everything recorded so far
  status   whether telemetry is on, why, where data goes, what is pending
  show     the pending events, exactly as they will be sent
  upload   send the pending events now
  report   a summary of your own usage from the events kept on this machine
"""


def run(t: Telemetry, argv: list[str]) -> int:
    """Dispatch one command; returns 0 on success, 1 on failure, 2 on a usage error."""
    if not argv or argv[0] in ("-h", "--help", "help"):
        out = sys.stdout if argv else sys.stderr
        out.write(USAGE.format(tool=t.tool))
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    handler = COMMANDS.get(name)
    if handler is None or rest:
        sys.stderr.write(f"{t.tool} telemetry: unknown command {' '.join(argv)!r}\n")
        sys.stderr.write(USAGE.format(tool=t.tool))
        return 2
    return handler(t)


def _choose(state: str) -> Callable[[Telemetry], int]:
    def choose(t: Telemetry) -> int:
        if t.problem:
            sys.stderr.write(f"{t.tool} telemetry: {t.problem}\n")
            return 1
        try:
            t.set_choice(state)
        except OSError as exc:
            sys.stderr.write(
                f"{t.tool} telemetry: cannot save your choice in {t.config_dir}: {exc.strerror}\n"
            )
            return 1
        sys.stdout.write(_CONFIRM[state].format(tool=t.tool, endpoint=t.endpoint) + "\n")
        decision = t.decision()
        if decision.state != state:
            sys.stdout.write(
                f"Note: telemetry is still {decision.state} here: {decision.reason}.\n"
            )
        return 0

    return choose


_CONFIRM = {
    "on": "Telemetry is on: anonymous usage statistics will be sent to {endpoint}. Thank you.",
    "local": "Telemetry is local: usage is recorded for '{tool} telemetry report' and never sent.",
    "off": "Telemetry is off: nothing is recorded, and what was recorded has been deleted.",
}


def status(t: Telemetry) -> int:
    d = t.decision()
    state = "not decided (you will be asked once at a terminal)" if d.state == "ask" else d.state
    stored = consent.read_stored(t.config_dir)
    agreed = (
        f"{stored.policy_version} ({stored.state}, {stored.date})"
        if isinstance(stored, consent.Stored)
        else "none"
    )
    stats = spool.load_stats(t.state_dir)
    pending = len(spool.entries(os.path.join(t.state_dir, spool.SPOOL)))
    kept = len(spool.entries(os.path.join(t.state_dir, spool.LOCAL)))
    last = stats.get("last_upload")
    if isinstance(last, dict):
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(last.get("time", 0)))
        last_line = f"{when}: {last.get('result', '?')}"
    else:
        last_line = "never"
    dropped = {
        "too many": stats.get("dropped_full", 0),
        "too old": stats.get("dropped_old", 0),
        "refused by the collector": stats.get("dropped_invalid", 0)
        + stats.get("dropped_rejected", 0),
        "unreadable": stats.get("quarantined", 0),
    }
    total = sum(int(v) for v in dropped.values())
    detail = ", ".join(f"{k}: {v}" for k, v in dropped.items() if v)
    lines = [
        f"telemetry:       {state}",
        f"decided by:      {d.source} ({d.reason})",
        f"endpoint:        {t.endpoint}",
        f"policy version:  {t.policy.version} (agreed: {agreed})",
        f"pending events:  {pending}"
        + (f" (and {kept} kept for your report only)" if kept else ""),
        f"last upload:     {last_line}",
        f"events dropped:  {total}" + (f" ({detail})" if detail else ""),
    ]
    if stats.get("last_refusal"):
        lines.append(f"last refusal:    {stats['last_refusal']}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def show(t: Telemetry) -> int:
    import json

    from optin.client.upload import pending_batches

    batches = pending_batches(t.policy, t.state_dir)
    if not batches:
        sys.stdout.write("No pending events.\n")
        return 0
    for batch in batches:
        sys.stdout.write(json.dumps(batch, indent=2, sort_keys=True) + "\n")
    return 0


def upload(t: Telemetry) -> int:
    result = t.upload_now()
    (sys.stdout if result.ok else sys.stderr).write(f"{t.tool} telemetry: {result.message}\n")
    return 0 if result.ok else 1


def report(t: Telemetry) -> int:
    """Commands, failures and median durations from the events kept on this machine."""
    rows: dict[str, dict[str, Any]] = {}
    days: set[int] = set()
    for which in (spool.LOCAL, spool.SPOOL):
        for entry in spool.entries(os.path.join(t.state_dir, which)):
            event = spool.read(entry)
            if event is None or event.get("kind") != "command":
                continue
            row = rows.setdefault(event["command"], {"runs": 0, "failures": 0, "ms": []})
            row["runs"] += 1
            row["failures"] += event.get("outcome") != "success"
            row["ms"].append(event.get("duration_ms", 0))
            days.add(int(event.get("time", 0)) // 86400)
    if not rows:
        sys.stdout.write(
            "No usage recorded on this machine"
            f" (try '{t.tool} telemetry local' to keep a record for yourself).\n"
        )
        return 0
    width = max(len("command"), *(len(c) for c in rows))
    out = [f"Your usage of {t.tool} over {len(days)} day(s), from this machine:", ""]
    out.append(f"{'command':<{width}}  {'runs':>6}  {'failed':>6}  {'median':>9}")
    for name, row in sorted(rows.items(), key=lambda kv: (-kv[1]["runs"], kv[0])):
        ms = sorted(row["ms"])
        median = ms[len(ms) // 2]
        out.append(f"{name:<{width}}  {row['runs']:>6}  {row['failures']:>6}  {median:>7}ms")
    sys.stdout.write("\n".join(out) + "\n")
    return 0


COMMANDS: dict[str, Callable[[Telemetry], int]] = {
    "on": _choose("on"),
    "off": _choose("off"),
    "local": _choose("local"),
    "status": status,
    "show": show,
    "upload": upload,
    "report": report,
}
