"""The public notice: what a tool collects and why, rendered from its policy.

Because the notice is generated from the same file the client and collector enforce, it cannot
drift from what is actually collected.
"""

from __future__ import annotations

from optin.events import ARCHES, OSES, OUTCOMES
from optin.policy import OTHER, UNKNOWN_COMMAND, Policy

__all__ = ["NEVER_COLLECTED", "render"]

NEVER_COLLECTED = (
    "Positional arguments (file names, paths, URLs, names you choose), only their count where "
    "listed below.",
    "The value of any option not listed below with its closed list of values.",
    "Error messages, stack traces or any other free text: only an error category.",
    "Your IP address or user agent: the collector never stores or logs them.",
    "Any permanent identifier: no machine id, user name, e-mail or hostname. Events carry a "
    "session id that changes every rotation period and cannot link two periods.",
    "Environment variables, file contents, or anything typed at a prompt.",
)


def _values(values: tuple[str, ...] | None) -> str:
    return ", ".join(f"`{v}`" for v in (*(values or ()), OTHER))


def render(policy: Policy) -> str:
    """Markdown listing every field of the policy with its purpose, and what is never collected."""
    s = policy.settings
    lines = [
        f"# What {policy.name} collects, and why",
        "",
        policy.purpose,
        "",
        f"Policy version {policy.version}. Telemetry is **off until you say yes**; "
        f"`{policy.name} telemetry off` stops it and deletes what was not yet sent. "
        f"`DO_NOT_TRACK=1` or `{policy.env_prefix}_DISABLE_TELEMETRY=true` turn it off too. "
        f"Data goes to {policy.endpoint}.",
        "",
        "## Collected with every command",
        "",
        "| field | what | why |",
        "| --- | --- | --- |",
        "| command | the command path, from the tool's own list below "
        f"(`{UNKNOWN_COMMAND}` otherwise) | which commands are used |",
        f"| outcome | one of {', '.join(f'`{o}`' for o in OUTCOMES)}, and the exit code "
        "| which commands fail |",
        "| error | an error category from the list below, or `other` | why commands fail |",
        f"| duration | milliseconds; `slow` when over {s.slow_threshold_seconds:g} s "
        "| which commands are slow |",
        "| app version, Python version | e.g. `1.4.0`, `3.12` | version adoption |",
        f"| OS, CPU architecture | {', '.join(OSES)}; {', '.join(ARCHES)} | platform support |",
        "| CI, interactive | whether it ran in CI, whether at a terminal | how the tool is used |",
        "| time | the hour (UTC), never the exact time | usage over time |",
        f"| session id | a random id that changes every {s.session_rotation_hours} hours "
        "| failures followed by success within one session |",
        "",
        "Once a day and once a month the tool also sends an `active` ping with no id at all, "
        "so that daily and monthly users can be counted.",
        "",
        "## Commands and options",
        "",
    ]
    for path, cmd in sorted(policy.commands.items()):
        lines.append(f"- `{path}`: {cmd.purpose}")
        if cmd.positional_count:
            lines.append("  - the number of positional arguments (never their values)")
        for name, opt in sorted(cmd.options.items()):
            if opt.values is None:
                lines.append(f"  - option `{name}`: whether it was given. {opt.purpose}")
            else:
                lines.append(
                    f"  - option `{name}`: whether it was given and its value, one of "
                    f"{_values(opt.values)}. {opt.purpose}"
                )
    if policy.dimensions:
        lines += ["", "## Dimensions (on every event)", ""]
        for name, dim in sorted(policy.dimensions.items()):
            lines.append(f"- `{name}`, one of {_values(dim.values)}: {dim.purpose}")
    if policy.events:
        lines += ["", "## Events", ""]
        for name, ev in sorted(policy.events.items()):
            lines.append(f"- `{name}`: {ev.purpose}")
            for pname, prop in sorted(ev.properties.items()):
                if prop.type == "enum":
                    what = f"one of {_values(prop.values)}"
                elif prop.type == "bool":
                    what = "true or false"
                else:
                    what = "a bucket: " + ", ".join(f"≥{b}" for b in (0, *prop.buckets))
                lines.append(f"  - `{pname}`, {what}: {prop.purpose}")
    if policy.errors:
        lines += ["", "## Error categories", ""]
        for name, purpose in sorted(policy.errors.items()):
            lines.append(f"- `{name}`: {purpose}")
        lines.append("- `other`: any error not listed above.")
    lines += [
        "",
        "## Never collected",
        "",
        *(f"- {item}" for item in NEVER_COLLECTED),
        "",
        "## Keeping and sharing",
        "",
        f"Raw events are kept {s.retention_days} days, then deleted; only daily counts are "
        "kept after that. Published counts below 10 are suppressed. Your consent lasts "
        f"{s.consent_expiry_months} months, then you are asked again.",
        "",
    ]
    return "\n".join(lines)
