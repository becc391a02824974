"""What the client costs a CLI: import time, and wall time added by recording one command.

    python bench/bench_client_import.py [RUNS]

Every figure is a median over RUNS (default 40) alternating runs of fresh processes, against a
baseline measured in the same run, so a busy machine shifts both sides alike. Budgets (issue 3):
``import optin`` under 3 ms over ``python -c pass``; recording one command with telemetry on,
collector black-holed, under 2 ms over the same tool with telemetry off — also when the spool is
due and the detached uploader is spawned.
"""

from __future__ import annotations

import os
import resource
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


def compare(
    cases: dict[str, tuple[list[str], dict[str, str], object]], runs: int
) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) per case over ``runs`` alternating runs."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in cases}
    for argv, env, before in cases.values():  # warm the caches (and the policy cache)
        wall(argv, env, before)
    for _ in range(runs):
        for name, (argv, env, before) in cases.items():
            times[name].append(wall(argv, env, before))
    return {
        name: (
            statistics.median(w for w, _ in t) * 1000,
            statistics.median(c for _, c in t) * 1000,
        )
        for name, t in times.items()
    }


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


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "SYSTEMROOT")}
    base["PYTHONPATH"] = str(ROOT / "src")
    hole = socket.create_server(("127.0.0.1", 0), backlog=1024)  # accepts, never answers
    endpoint = f"http://127.0.0.1:{hole.getsockname()[1]}"
    with tempfile.TemporaryDirectory() as home:
        env = {**base, "HOME": home, "SAMPLE_CLI_TELEMETRY_ENDPOINT": endpoint}
        print(f"{runs} alternating runs each; medians per process: wall time, CPU time\n")
        imports = compare(
            {
                "python -c pass": ([PY, "-c", "pass"], env, None),
                "import optin": ([PY, "-c", "import optin"], env, None),
                "import the client (off path)": (
                    [PY, "-c", "import optin.client.telemetry"],
                    env,
                    None,
                ),
                "import the client (on path)": (
                    [
                        PY,
                        "-c",
                        "import optin.client.telemetry, optin.client.capture, "
                        "optin.client.spool, optin.events",
                    ],
                    env,
                    None,
                ),
            },
            runs,
        )
        zero, zero_cpu = imports["python -c pass"]
        for name, (ms, cpu) in imports.items():
            print(
                f"  {name:34s} wall {ms:7.2f} ms {ms - zero:+6.2f}   "
                f"cpu {cpu:7.2f} ms {cpu - zero_cpu:+6.2f}"
            )
        state = Path(home) / ".local" / "state" / "optin" / "sample-cli"

        def uploader_done() -> None:
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
        record = compare(
            {
                "tool, telemetry off": (tool, {**env, "SAMPLE_CLI_TELEMETRY": "off"}, None),
                "tool, telemetry on": (tool, {**env, "SAMPLE_CLI_TELEMETRY": "on"}, not_due),
                "tool, on, upload due (spawned)": (
                    tool,
                    {**env, "SAMPLE_CLI_TELEMETRY": "on", "OPTIN_UPLOAD_TIMEOUT": "0.2"},
                    due,
                ),
                "same script without optin": ([PY, "-c", BARE], env, None),
            },
            runs,
        )
        click_tool = [PY, "-c", CLICK_TOOL, str(POLICY)]
        record.update(
            compare(
                {
                    "click tool, telemetry off": (
                        click_tool,
                        {**env, "SAMPLE_CLI_TELEMETRY": "off"},
                        None,
                    ),
                    "click tool, telemetry on": (
                        click_tool,
                        {**env, "SAMPLE_CLI_TELEMETRY": "on"},
                        not_due,
                    ),
                    "click tool, on, upload due": (
                        click_tool,
                        {**env, "SAMPLE_CLI_TELEMETRY": "on", "OPTIN_UPLOAD_TIMEOUT": "0.2"},
                        due,
                    ),
                },
                runs,
            )
        )
        off, off_cpu = record["tool, telemetry off"]
        print()
        for name, (ms, cpu) in record.items():
            if name.startswith("click"):
                off, off_cpu = record["click tool, telemetry off"]
            print(
                f"  {name:34s} wall {ms:7.2f} ms {ms - off:+6.2f}   "
                f"cpu {cpu:7.2f} ms {cpu - off_cpu:+6.2f}  (vs off)"
            )
        on_us, off_us = in_process(200, home, endpoint)
        print(
            f"\n  in process, one command recorded: on {on_us:.0f} µs, off {off_us:.1f} µs "
            f"(ratio {on_us / max(off_us, 0.001):.0f}x)"
        )
        off, off_cpu = record["click tool, telemetry off"]
        on = record["click tool, telemetry on"]
        due_ = record["click tool, on, upload due"]
        print(
            f"\nbudgets (wall / cpu): import optin +{imports['import optin'][0] - zero:.2f} / "
            f"+{imports['import optin'][1] - zero_cpu:.2f} ms (< 3 ms); "
            f"click tool recording on +{on[0] - off:.2f} / +{on[1] - off_cpu:.2f} ms, "
            f"due +{due_[0] - off:.2f} / +{due_[1] - off_cpu:.2f} ms (< 2 ms)"
        )
        uploader_done()
    hole.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
