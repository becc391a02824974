"""What the client costs a CLI: import time, and wall time added by recording one command.

    python bench/bench_client_import.py [RUNS] [--click-runs N] [--instructions]

Every figure is a median over RUNS (default 40) alternating runs of fresh processes, against a
baseline measured in the same run, so a busy machine shifts both sides alike. The click tool
spends 60 ms importing click, whose jitter swamps a 2 ms difference at 40 or even 100 rounds:
``--click-runs`` gives it more. Budgets (issue 3): importing the client modules a recorded
command loads, under 3 ms over ``python -c pass``; recording one command with telemetry on,
collector black-holed, under 2 ms over the same tool with telemetry off — also when the spool is
due and the detached uploader is spawned.

Fairness: each round runs its cases in a shuffled order (seeded), so no case always comes right
after the wait for an uploader, or right after another case; a round with an upload waits until
the uploader process has exited (not only until it released the spool's lock), so it never runs
beside the next measurement. "added" is the difference of the medians; "paired" is the median of
the per-round differences (each on run against the off run of its own round), which a slowly
changing background load disturbs less. The on-path import line imports exactly the modules a
recorded command loads (read from a real run).

``--instructions`` adds a figure no other process on the machine can move: the user-space
instructions of one run of each case under ``valgrind --tool=callgrind`` (needs valgrind;
``PYTHONHASHSEED=0``), against the same baselines. It leaves out the kernel's share (files
written, the spawn) and says nothing of wall time: a check on the medians, not a replacement.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "data" / "policy.toml"
PY = sys.executable

TOOL = """
import sys
from optin import Telemetry
t = Telemetry(sys.argv[1], "1.0.0")
with t.command("canister.install") as cmd:
    cmd.option("mode", "install")
"""
CLICK_TOOL = """
import sys
import click
from optin import Telemetry
from optin.integrations.click import instrument

@click.group()
def cli():
    pass

@cli.group()
def canister():
    pass

@canister.command()
@click.option("--mode", type=click.Choice(["install", "reinstall", "upgrade", "auto"]))
@click.argument("name")
def install(mode, name):
    pass

instrument(cli, Telemetry(sys.argv[1], "1.0.0"))
cli(["canister", "install", "--mode", "upgrade", "hello"])
"""
BARE = """
import sys
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def wall(argv: list[str], env: dict[str, str], before: object = None) -> tuple[float, float]:
    """Wall and CPU time of one process; ``before()`` prepares it, may return a wait-after.

    CPU time (user + system, of that process only: a detached uploader is not its waited-for
    child) is much less disturbed than wall time when other work shares the machine.
    """
    after = before() if callable(before) else None
    cpu = _cpu()
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    cpu = _cpu() - cpu
    if callable(after):
        after()  # e.g. let the spawned uploader finish: it must not slow the next measurement
    return elapsed, cpu


Cases = dict[str, tuple[list[str], dict[str, str], object]]


def compare(cases: Cases, runs: int, seed: int = 3) -> dict[str, list[tuple[float, float]]]:
    """(wall s, CPU s) of each case in each of ``runs`` rounds, cases shuffled in every round."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv, env, before in cases.values():  # warm the caches (and the policy cache)
        wall(argv, env, before)
    order = list(cases)
    rng = random.Random(seed)
    for _ in range(runs):
        rng.shuffle(order)
        for name in order:
            argv, env, before = cases[name]
            times[name].append(wall(argv, env, before))
    return times


def medians(times: dict[str, list[tuple[float, float]]]) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) per case."""
    return {
        name: (
            statistics.median(w for w, _ in t) * 1000,
            statistics.median(c for _, c in t) * 1000,
        )
        for name, t in times.items()
    }


def paired(on: list[tuple[float, float]], off: list[tuple[float, float]]) -> tuple[float, float]:
    """Median of the per-round differences (wall ms, CPU ms)."""
    return (
        statistics.median(a[0] - b[0] for a, b in zip(on, off, strict=True)) * 1000,
        statistics.median(a[1] - b[1] for a, b in zip(on, off, strict=True)) * 1000,
    )


def uploaders_running(marker: str) -> bool:
    """Whether a detached uploader (or the shell that starts it) whose job names ``marker``
    is still running: read from /proc; elsewhere, unknown (False)."""
    try:
        pids = [p for p in os.listdir("/proc") if p.isdigit()]
    except OSError:
        return False
    for pid in pids:
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if b"optin.client.upload" in cmdline and marker.encode() in cmdline:
            return True
    return False


def on_path_modules(argv: list[str], env: dict[str, str]) -> list[str]:
    """The optin modules a recorded command loads (state present, upload not due)."""
    show = "\nprint(*sorted(m for m in sys.modules if m.partition('.')[0] == 'optin'))"
    probe = [*argv[:2], argv[2] + show, *argv[3:]]
    done = subprocess.run(probe, env=env, check=True, stdin=subprocess.DEVNULL, capture_output=True)
    return done.stdout.decode().split()


def in_process(runs: int, home: str, endpoint: str) -> tuple[float, float]:
    """Median microseconds of one ``with t.command(...)`` block, on and off, in one process."""
    from optin import Telemetry

    def one(state: str) -> float:
        env = {
            "HOME": home,
            "SAMPLE_CLI_TELEMETRY": state,
            "SAMPLE_CLI_TELEMETRY_ENDPOINT": endpoint,
        }
        t = Telemetry(str(POLICY), "1.0.0", environ=env, upload="manual")
        start = time.perf_counter()
        with t.command("canister.install") as cmd:
            cmd.option("mode", "install")
        return time.perf_counter() - start

    on = [one("on") for _ in range(runs)]
    off = [one("off") for _ in range(runs)]
    return statistics.median(on) * 1e6, statistics.median(off) * 1e6


def instructions(argv: list[str], env: dict[str, str], before: object = None) -> int:
    """User-space instructions of one run under callgrind (its children are not traced)."""
    after = before() if callable(before) else None
    done = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
        env={**env, "PYTHONHASHSEED": "0"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        check=True,
    )
    if callable(after):
        after()
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from valgrind: {done.stderr[-500:]}")
    return int(found.group(1))


def report_instructions(cases: Cases, against: str) -> None:
    """One run of each case under callgrind: millions of instructions, and more than ``against``."""
    counts = {}
    for name, (argv, env, before) in cases.items():
        instructions(argv, env, before)  # the caches warm (and the state), as for the timing
        counts[name] = instructions(argv, env, before)
    for name, count in counts.items():
        more = (count - counts[against]) / 1e6
        print(f"  {name:34s} {count / 1e6:8.2f} M instructions {more:+6.2f}")


def report(
    times: dict[str, list[tuple[float, float]]], against: str, names: list[str] | None = None
) -> dict[str, tuple[float, float]]:
    """Print each case's medians, added over ``against`` and paired; return the medians."""
    med = medians(times)
    zero, zero_cpu = med[against]
    for name in names or list(times):
        ms, cpu = med[name]
        pw, pc = paired(times[name], times[against])
        print(
            f"  {name:34s} wall {ms:7.2f} ms {ms - zero:+6.2f} (paired {pw:+6.2f})   "
            f"cpu {cpu:7.2f} ms {cpu - zero_cpu:+6.2f} (paired {pc:+6.2f})"
        )
    return med


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("runs", nargs="?", type=int, default=40, help="rounds (default 40)")
    ap.add_argument(
        "--click-runs",
        type=int,
        help="rounds for the click tool (default RUNS): its 60 ms of import jitter needs more",
    )
    ap.add_argument(
        "--instructions", action="store_true", help="also count instructions under valgrind"
    )
    args = ap.parse_args()
    runs = args.runs
    if args.instructions and shutil.which("valgrind") is None:
        ap.error("--instructions needs valgrind")
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "SYSTEMROOT")}
    base["PYTHONPATH"] = str(ROOT / "src")
    hole = socket.create_server(("127.0.0.1", 0), backlog=1024)  # accepts, never answers
    endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as home:
        env = {**base, "HOME": home, "SAMPLE_CLI_TELEMETRY_ENDPOINT": endpoint}
        on_env = {**env, "SAMPLE_CLI_TELEMETRY": "on"}
        state = Path(home) / ".local" / "state" / "optin" / "sample-cli"

        def uploader_done() -> None:
            if os.path.isdir("/proc"):
                deadline = time.monotonic() + 30
                while uploaders_running(home) and time.monotonic() < deadline:
                    time.sleep(0.02)
                return
            from optin.client import spool

            time.sleep(0.7)  # the uploader starts 0.5 s after the tool
            while spool.busy(str(state)):
                time.sleep(0.02)

        def due() -> object:
            state.mkdir(parents=True, exist_ok=True)
            (state / "next-upload").write_text("0")
            return uploader_done

        def not_due() -> None:
            state.mkdir(parents=True, exist_ok=True)
            (state / "next-upload").write_text("1e12")

        tool = [PY, "-c", TOOL, str(POLICY)]
        for _ in range(3):  # the state: secret, session id, today's pings, the policy cache
            wall(tool, on_env, not_due)
        not_due()
        on_path = [m for m in on_path_modules(tool, on_env) if m != "optin"]
        print(f"{runs} rounds, cases shuffled in each; medians per process: wall time, CPU time")
        print(f"a recorded command loads: {', '.join(on_path)}\n")
        import_cases: Cases = {
            "python -c pass": ([PY, "-c", "pass"], env, None),
            "import optin": ([PY, "-c", "import optin"], env, None),
            "import the client (off path)": (
                [PY, "-c", "import optin.client.telemetry"],
                env,
                None,
            ),
            "import the client (on path)": ([PY, "-c", "import " + ", ".join(on_path)], env, None),
        }
        tool_cases: Cases = {
            "tool, telemetry off": (tool, {**env, "SAMPLE_CLI_TELEMETRY": "off"}, None),
            "tool, telemetry on": (tool, on_env, not_due),
            "tool, on, upload due (spawned)": (
                tool,
                {**on_env, "OPTIN_UPLOAD_TIMEOUT": "0.2"},
                due,
            ),
            "same script without optin": ([PY, "-c", BARE], env, None),
        }
        click_tool = [PY, "-c", CLICK_TOOL, str(POLICY)]
        click_cases: Cases = {
            "click tool, telemetry off": (click_tool, {**env, "SAMPLE_CLI_TELEMETRY": "off"}, None),
            "click tool, telemetry on": (click_tool, on_env, not_due),
            "click tool, on, upload due": (
                click_tool,
                {**on_env, "OPTIN_UPLOAD_TIMEOUT": "0.2"},
                due,
            ),
        }
        imports = report(compare(import_cases, runs), "python -c pass")
        print()
        report(compare(tool_cases, runs), "tool, telemetry off")
        click = compare(click_cases, args.click_runs or runs)
        med = report(click, "click tool, telemetry off")
        print(
            "  (added: difference of the medians vs off; paired: median of per-round differences)"
        )
        on_us, off_us = in_process(200, home, endpoint)
        print(
            f"\n  in process, one command recorded: on {on_us:.0f} µs, off {off_us:.1f} µs "
            f"(ratio {on_us / max(off_us, 0.001):.0f}x)"
        )
        off = med["click tool, telemetry off"]
        on, due_ = med["click tool, telemetry on"], med["click tool, on, upload due"]
        p_on = paired(click["click tool, telemetry on"], click["click tool, telemetry off"])
        p_due = paired(click["click tool, on, upload due"], click["click tool, telemetry off"])
        zero = imports["python -c pass"]
        client = imports["import the client (on path)"]
        print(
            f"\nbudgets (wall / cpu): import of the client (on path) +{client[0] - zero[0]:.2f} / "
            f"+{client[1] - zero[1]:.2f} ms (< 3 ms); click tool recording "
            f"on +{on[0] - off[0]:.2f} / +{on[1] - off[1]:.2f} ms "
            f"(paired +{p_on[0]:.2f} / +{p_on[1]:.2f}), "
            f"due +{due_[0] - off[0]:.2f} / +{due_[1] - off[1]:.2f} ms "
            f"(paired +{p_due[0]:.2f} / +{p_due[1]:.2f}) (< 2 ms)"
        )
        if args.instructions:
            print("\nuser-space instructions, one run each under callgrind:\n")
            report_instructions(import_cases, "python -c pass")
            report_instructions(tool_cases, "tool, telemetry off")
            report_instructions(click_cases, "click tool, telemetry off")
        uploader_done()
    hole.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
