"""Side by side: wall time a CLI adds to "record one event and exit", optin vs analytics clients.

    python bench/bench_vs_analytics.py [--cold] [--quick] [--clients optin,posthog,...]
                                       [--runs N] [--client-runs N] [--timeout S]

Issue 3, "Budgets", third bullet. In one run, against the same loopback endpoints:

- ``refused``: a 127.0.0.1 port with nothing listening;
- ``black-holed``: a 127.0.0.1 socket served by a thread of this process that accepts every
  connection and never answers.

Two modes. **Warm** (the default) measures the steady state of a CLI people use every day: each
case keeps one HOME / XDG tree across its runs, made by warm-up runs before the measured ones.
For optin that tree holds what any run after the first finds: the stored consent (``on``, as
``<tool> telemetry on`` writes it; no ``<APP>_TELEMETRY`` variable, so consent is read and the
project file sought as for a real user), the secret and today's session id, the state and
config directories, the policy cache, today's and this month's ``active`` pings already sent, and
the next upload time in the future (rewritten before every run: the uploader is not spawned).
The other clients keep no state between runs that we know of; they get the same kept tree.
**Cold** (``--cold``) gives every run a fresh, empty HOME: optin then runs its first run (the
secret made, the TOML parsed, the pings sent, the uploader spawned), with ``<APP>_TELEMETRY=on``.

Clients, each a fresh process per run:

- optin: ``Telemetry(policy, upload="background")``, one ``with t.command("start"): pass``;
- posthog: ``Posthog(key, host=...)``, ``capture(...)``, ``shutdown()``;
- segment-analytics-python: ``analytics.write_key/host``, ``track(...)``, ``shutdown()``;
- snowplow-tracker: ``Snowplow.create_tracker(ns, endpoint)``, ``track(StructuredEvent)``,
  ``flush()``.

Baselines measured in the same run: a script that imports nothing, and for each client the same
script with its event call removed (import, set-up and flush/shutdown only). Runs alternate
between cases; every run is capped by a timeout (the case then reports ``>timeout`` and is not run
again). A run's end is seen as it happens (a blocking wait, with a watchdog for the cap).
Needs the ``bench`` extra: ``pip install -e '.[bench]'``.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
POLICY = ROOT / "tests" / "data" / "policy.toml"
PY = sys.executable

BARE = "pass\n"
SCRIPTS = {
    "optin": """
import sys
from optin import Telemetry
t = Telemetry(sys.argv[2], "1.0.0", upload="background")
with t.command("start"):  #EVENT
    pass  #EVENT
""",
    "posthog": """
import sys
from posthog import Posthog
posthog = Posthog("phc_bench", host=sys.argv[1])
posthog.capture("command run", distinct_id="bench-user")  #EVENT
posthog.shutdown()
""",
    "segment": """
import sys
import segment.analytics as analytics
analytics.write_key = "bench"
analytics.host = sys.argv[1]
analytics.track("bench-user", "command run")  #EVENT
analytics.shutdown()
""",
    "snowplow": """
import sys
from snowplow_tracker import Snowplow, StructuredEvent
tracker = Snowplow.create_tracker(namespace="bench", endpoint=sys.argv[1])
tracker.track(StructuredEvent(category="cli", action="command run"))  #EVENT
tracker.flush()
""",
}


def without_event(script: str) -> str:
    return "".join(
        line + "\n" for line in script.splitlines() if not line.rstrip().endswith("#EVENT")
    )


class BlackHole:
    """A loopback listener whose thread accepts connections and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():  # bounded by close()
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(timeout=2)
        self.sock.close()
        for conn in self.held:
            conn.close()


def refused_port() -> int:
    """A loopback port that was just free: nothing listens on it, connections are refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def run_once(
    script: str, endpoint: str, home: str, timeout: float, consent_var: bool
) -> float | None:
    """Wall seconds of one fresh process with its HOME/XDG dirs under ``home``, or None past
    ``timeout``. ``consent_var``: turn optin on with ``<APP>_TELEMETRY=on`` (cold runs) rather
    than through the stored consent (warm runs)."""
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "SYSTEMROOT")}
    env.update(
        {
            "PYTHONPATH": str(ROOT / "src"),
            "HOME": home,
            "XDG_STATE_HOME": os.path.join(home, "state"),
            "XDG_CONFIG_HOME": os.path.join(home, "config"),
            "XDG_CACHE_HOME": os.path.join(home, "cache"),
            "XDG_DATA_HOME": os.path.join(home, "data"),
            "SAMPLE_CLI_TELEMETRY_ENDPOINT": endpoint,
            "OPTIN_UPLOAD_TIMEOUT": "1",  # the detached uploader; never waited for here
        }
    )
    if consent_var:
        env["SAMPLE_CLI_TELEMETRY"] = "on"
    argv = [PY, "-c", script, endpoint, str(POLICY)]
    start = time.perf_counter()
    proc = subprocess.Popen(
        argv,
        env=env,
        cwd=home,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    # A watchdog rather than ``proc.wait(timeout=...)``: with a timeout, Popen.wait polls with
    # sleeps that double from 0.5 ms to 50 ms, so a process was seen to end only at the next
    # poll (about 16 or 32 ms for a short one): times came out in steps, not as measured.
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watchdog = threading.Timer(timeout, kill)
    watchdog.start()
    proc.wait()  # blocking waitpid: returns as the process ends
    elapsed = time.perf_counter() - start
    watchdog.cancel()
    return None if fired.is_set() else elapsed


def optin_dirs(home: str) -> tuple[str, str]:
    """optin's state and config directories under ``home`` (as ``run_once`` sets XDG)."""
    return (
        os.path.join(home, "state", "optin", "sample-cli"),
        os.path.join(home, "config", "optin", "sample-cli"),
    )


def consent_on(home: str) -> None:
    """The stored choice ``on``, as ``<tool> telemetry on`` records it."""
    from optin.client import consent
    from optin.policy import load

    consent.write_stored(optin_dirs(home)[1], "on", load(POLICY).version, time.time())


def not_due(home: str) -> None:
    """Next upload in the future: the run records and does not spawn the uploader."""
    state = optin_dirs(home)[0]
    os.makedirs(state, mode=0o700, exist_ok=True)
    with open(os.path.join(state, "next-upload"), "w") as f:
        f.write("1e12")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--cold", action="store_true", help="a fresh, empty HOME for every run (first runs)"
    )
    ap.add_argument("--quick", action="store_true", help="2 runs each, 15 s cap")
    ap.add_argument(
        "--clients",
        default=",".join(SCRIPTS),
        help=f"which clients, comma-separated (default {','.join(SCRIPTS)}); optin is always run",
    )
    ap.add_argument("--runs", type=int, default=30, help="runs for optin and the baseline")
    ap.add_argument("--client-runs", type=int, default=5, help="runs for third-party clients")
    ap.add_argument("--timeout", type=float, default=40.0, help="cap per run, seconds")
    args = ap.parse_args()
    if args.quick:
        args.runs = args.client_runs = 2
        args.timeout = 15.0

    hole = BlackHole()
    endpoints = {
        "refused": f"http://127.0.0.1:{refused_port()}",
        "black-holed": f"http://127.0.0.1:{hole.port}",
    }
    # case -> (script, endpoint, runs)
    cases: dict[tuple[str, str, str], tuple[str, str, int]] = {}
    cases[("bare", "-", "imports nothing")] = (BARE, endpoints["refused"], args.runs)
    clients = {"optin", *args.clients.split(",")}
    unknown = clients - set(SCRIPTS)
    if unknown:
        ap.error(f"unknown clients: {', '.join(sorted(unknown))}")
    for client, script in SCRIPTS.items():
        if client not in clients:
            continue
        runs = args.runs if client == "optin" else args.client_runs
        for ep_name, url in endpoints.items():
            cases[(client, ep_name, "no event")] = (without_event(script), url, runs)
            cases[(client, ep_name, "event")] = (script, url, runs)
    times: dict[tuple[str, str, str], list[float]] = {key: [] for key in cases}
    timed_out: set[tuple[str, str, str]] = set()
    began = time.perf_counter()
    mode = "cold (an empty HOME every run)" if args.cold else "warm (state kept, made before)"
    print(
        f"mode: {mode}; runs: {args.runs} (optin, baseline), {args.client_runs} (others); "
        f"cap {args.timeout:g} s per run; endpoints {endpoints}",
        flush=True,
    )
    with tempfile.TemporaryDirectory() as parent:
        kept = {key: tempfile.mkdtemp(dir=parent) for key in cases}

        def once(key: tuple[str, str, str], script: str, url: str) -> float | None:
            home = tempfile.mkdtemp(dir=parent) if args.cold else kept[key]
            if not args.cold and key[0] == "optin":
                not_due(home)
            return run_once(script, url, home, args.timeout, consent_var=args.cold)

        for key, (script, url, _) in cases.items():  # warm the caches (and optin's state)
            if not args.cold and key[0] == "optin":
                consent_on(kept[key])
                for _ in range(3):  # secret, session id, pings; then the policy cache
                    once(key, script, url)
            elif key[2] != "event":
                once(key, script, url)
        for i in range(max(args.runs, args.client_runs)):
            for key, (script, url, runs) in cases.items():
                if i >= runs or key in timed_out:
                    continue
                elapsed = once(key, script, url)
                if elapsed is None:
                    timed_out.add(key)
                else:
                    times[key].append(elapsed)
            print(f"  round {i + 1} done, {time.perf_counter() - began:.0f} s", flush=True)
        time.sleep(1.5)  # let the last detached uploaders (1 s timeout) end before cleanup
    hole.close()

    def median_ms(key: tuple[str, str, str]) -> float | None:
        if key in timed_out or not times[key]:
            return None
        return statistics.median(times[key]) * 1000

    bare = median_ms(("bare", "-", "imports nothing"))
    assert bare is not None
    print(f"\nbaseline (python script importing nothing): {bare:.1f} ms median\n")
    header = (
        f"{'client':9s} {'endpoint':12s} {'no-event ms':>11s} {'event ms':>10s} "
        f"{'added ms':>10s} {'event-only ms':>13s} {'ratio vs optin':>15s} {'(event-only)':>13s}"
    )
    print(header)
    print("-" * len(header))
    optin_added: dict[str, tuple[float, float]] = {}
    for client in (c for c in SCRIPTS if c in clients):
        for ep_name in endpoints:
            noev = median_ms((client, ep_name, "no event"))
            ev = median_ms((client, ep_name, "event"))

            def fmt(v: float | None, width: int, signed: bool = False) -> str:
                if v is None:
                    return f"{'>timeout':>{width}s}"
                return f"{v:+{width}.1f}" if signed else f"{v:{width}.1f}"

            added = None if ev is None else ev - bare
            only = None if ev is None or noev is None else ev - noev
            if client == "optin" and added is not None and only is not None:
                optin_added[ep_name] = (added, only)
            ratio = ratio_only = f"{'-':>15s}"
            ref = optin_added.get(ep_name)
            if ref is not None:
                if added is None:
                    ratio = (
                        f"{'>' + format(args.timeout * 1000 / max(ref[0], 0.1), '.0f') + 'x':>15s}"
                    )
                    ratio_only = (
                        f"{'>' + format(args.timeout * 1000 / max(ref[1], 0.1), '.0f') + 'x':>13s}"
                    )
                else:
                    ratio = f"{added / max(ref[0], 0.1):14.1f}x"
                    ratio_only = f"{only / max(ref[1], 0.1):12.1f}x" if only is not None else ""
            print(
                f"{client:9s} {ep_name:12s} {fmt(noev, 11)} {fmt(ev, 10)} "
                f"{fmt(added, 10, True)} {fmt(only, 13, True)} {ratio} {ratio_only:>13s}"
            )
    print(
        "\nadded = event run minus the bare baseline (import + set-up + event + flush); "
        "event-only = event run minus the same script without its event call.\n"
        "ratios: a client's added (event-only) time over optin's on the same endpoint; "
        "event-only ratios use a floor of 0.1 ms for optin. "
        f"total {time.perf_counter() - began:.0f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
