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
BARE = """
import sys
"""


def wall(argv: list[str], env: dict[str, str], before: object = None) -> float:
    """Wall time of one process; ``before()`` prepares it and may return a wait-after function."""
    after = before() if callable(before) else None
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdin=subprocess.DEVNULL)
    elapsed = time.perf_counter() - start
    if callable(after):
        after()  # e.g. let the spawned uploader finish: it must not slow the next measurement
    return elapsed


def compare(
    cases: dict[str, tuple[list[str], dict[str, str], object]], runs: int
) -> dict[str, float]:
    times: dict[str, list[float]] = {name: [] for name in cases}
    for argv, env, before in cases.values():  # warm the caches (and the policy cache)
        wall(argv, env, before)
    for _ in range(runs):
        for name, (argv, env, before) in cases.items():
            times[name].append(wall(argv, env, before))
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


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
        print(f"{runs} alternating runs each; medians of wall time per process\n")
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
        zero = imports["python -c pass"]
        for name, ms in imports.items():
            print(f"  {name:34s} {ms:7.2f} ms   +{ms - zero:6.2f} ms")
        state = Path(home) / ".local" / "state" / "optin" / "sample-cli"

        def uploader_done() -> None:
            from optin.client import spool

            time.sleep(0.1)
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
        off = record["tool, telemetry off"]
        print()
        for name, ms in record.items():
            print(f"  {name:34s} {ms:7.2f} ms   {ms - off:+6.2f} ms vs off")
        on_us, off_us = in_process(200, home, endpoint)
        print(
            f"\n  in process, one command recorded: on {on_us:.0f} µs, off {off_us:.1f} µs "
            f"(ratio {on_us / max(off_us, 0.001):.0f}x)"
        )
        print(
            f"\nbudgets: import optin +{imports['import optin'] - zero:.2f} ms (< 3 ms); "
            f"recording on +{record['tool, telemetry on'] - off:.2f} ms, "
            f"due +{record['tool, on, upload due (spawned)'] - off:.2f} ms (< 2 ms)"
        )
        uploader_done()
    hole.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
