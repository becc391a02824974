"""``make demo``: a collector on SQLite, three example tools used by a few hundred simulated people.

What it does, from a fresh clone (``make demo`` has built ``.venv`` and installed the examples):

1. Makes ``demo-data/`` afresh (stopping the collector a previous demo left running), copies the
   three policies into ``demo-data/policies/``, and starts ``optin serve`` on SQLite
   (``demo-data/optin.db``) on a free loopback port, detached, its log in
   ``demo-data/collector.log``.
2. Simulates a few hundred people using ``demo-dfx``, ``demo-devsy`` and ``demo-cfdev`` over the
   last 90 days, in this process: each person has their own home, telemetry state and config
   directories and environment; each command they type is one run of the tool's own click /
   typer / argparse entry point with a fresh ``optin.Telemetry`` (as a new process would make),
   whose clock is the simulation's. The tools' simulated work advances that clock instead of
   sleeping, so a "25-second" start costs nothing and still counts as slow. Consent is given or
   refused with the tools' own ``telemetry on|off``; events go to each person's spool, and the
   real uploader sends them to the collector over HTTP every few simulated days.
3. Prints ``optin report`` for each tool, writes the open-data site (``optin publish``) to
   ``demo-data/site/``, and leaves the collector (and its dashboard) running, with its address
   and the command that stops it.

Nothing here fakes the pipeline: the only seams used are the ones the client offers everyone
(``state_dir``, ``config_dir``, ``environ``, ``clock``, ``platform``, ``upload="manual"``) and
the tools' :class:`Env` (environment, working directory, and the clock of their simulated work).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "demo-data"
DAYS = 88  # the collector refuses events older than the 90-day retention: keep clear of it
SEED = 2026
UPLOAD_EVERY_DAYS = 7
PEOPLE = {"demo-dfx": 120, "demo-devsy": 90, "demo-cfdev": 60}
#: Releases of each tool: (version, day of release counted from the start of the window).
RELEASES = {
    "demo-dfx": [("0.13.1", -30), ("0.14.0", 25), ("0.14.2", 62)],
    "demo-devsy": [("0.5.20", -30), ("0.5.27", 35), ("0.5.29", 70)],
    "demo-cfdev": [("1.1.4", -30), ("1.2.0", 45)],
}


# --- the collector ------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def stop_previous() -> None:
    """Stop the collector an earlier demo left running (its PID is in ``demo-data``)."""
    pid_file = DATA / "collector.pid"
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return
    try:  # only if that PID is still our collector (PIDs are reused)
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        cmdline = []
    if b"serve" not in cmdline or str(DATA).encode() not in b" ".join(cmdline):
        return
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)


def start_collector(port: int) -> int:
    """``optin serve`` in its own session (so ``make demo`` returns while it runs)."""
    with open(DATA / "collector.log", "wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "optin",
                "serve",
                "--db",
                f"sqlite:///{DATA / 'optin.db'}",
                "--policies",
                str(DATA / "policies"),
                "--port",
                str(port),
                # Every simulated person uploads from 127.0.0.1: one source, hundreds of people.
                "--rate-limit",
                "0",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=DATA,
            start_new_session=True,
        )
    (DATA / "collector.pid").write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the collector did not start:\n{(DATA / 'collector.log').read_text()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc.pid
        except OSError:
            time.sleep(0.1)
    sys.exit("the collector did not answer within 30 s; see demo-data/collector.log")


# --- simulated people -----------------------------------------------------------------------------


class Clock:
    """The simulation's time: Unix seconds that advance only when told to."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += max(0.0, seconds)


@dataclass
class Person:
    """One simulated person using one tool."""

    tool: str
    n: int
    rng: random.Random
    home: Path
    first_day: int
    last_day: int
    activity: float
    consent: str  # on, off, local, ci
    upgrade_lag: float
    traits: dict[str, Any] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)
    last_upload: float = 0.0

    @property
    def project(self) -> Path:
        return self.home / "project"

    def environ(self) -> dict[str, str]:
        env = {"HOME": str(self.home), "LANG": "C.UTF-8", "PATH": "/usr/bin:/bin"}
        if self.consent == "ci":
            env["CI"] = "true"
            env[self.tool.upper().replace("-", "_") + "_TELEMETRY"] = "on"
        env.update(self.traits.get("env", {}))
        return env

    def version(self, day: float) -> str:
        current = RELEASES[self.tool][0][0]
        for version, released in RELEASES[self.tool]:
            if day >= released + self.upgrade_lag:
                current = version
        return current


class Tool:
    """How to run one example tool in this process, and what its people do in a session."""

    app = ""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        from optin.policy import load

        module = self.module()
        self.policy = load(module.POLICY)
        self.cli = module

    @staticmethod
    def module() -> Any:
        raise NotImplementedError

    def invoke(self, person: Person, argv: list[str], telemetry: Any, env: Any) -> None:
        raise NotImplementedError

    def session(self, person: Person) -> list[list[str]]:
        raise NotImplementedError

    def setup(self, person: Person) -> None:
        """Prepare the person's home (project files) before the first session."""


def _click_like(call: Callable[[], Any]) -> None:
    try:
        call()
    except SystemExit:
        pass


class Dfx(Tool):
    app = "demo-dfx"

    @staticmethod
    def module() -> Any:
        import demo_dfx.cli

        return demo_dfx.cli

    def invoke(self, person: Person, argv: list[str], telemetry: Any, env: Any) -> None:
        cli = self.cli.build(telemetry, env)
        _click_like(lambda: cli.main(args=argv, prog_name="demo-dfx"))

    def setup(self, person: Person) -> None:
        if person.traits["project"]:
            (person.project / "dfx.json").write_text('{"canisters": {}}')

    def session(self, p: Person) -> list[list[str]]:
        rng, mem = p.rng, p.memory
        cmds: list[list[str]] = []
        canisters = mem.setdefault("canisters", [])
        if rng.random() < 0.15:
            cmds.append(["deploy"])  # before starting: fails if the replica is stopped
        start = ["start", "--background"] if rng.random() < 0.7 else ["start"]
        if rng.random() < 0.1:
            start.append("--clean")
        cmds.append(start)
        if not mem.get("identity") and rng.random() < 0.4:
            mode = rng.choice(["keyring", "keyring", "plaintext", "password-protected"])
            cmds.append(["identity", "new", f"dev-{p.n}", "--storage-mode", mode])
            mem["identity"] = True
        for _ in range(rng.randint(1, 5)):
            r = rng.random()
            net = ["--network", "ic"] if p.traits["mainnet"] and rng.random() < 0.5 else []
            if r < 0.3:
                cmds.append(["deploy", *net])
            elif r < 0.45 and canisters:
                cmds.append(["deploy", rng.choice(canisters), *net])
            elif r < 0.58 or not canisters:
                name = f"app-{p.n}-{len(canisters)}"
                canisters.append(name)
                cmds.append(["canister", "create", name, *net])
            elif r < 0.85:
                mode = rng.choices(["install", "reinstall", "upgrade", "auto"], [3, 1, 5, 2])[0]
                if rng.random() < 0.08:
                    cmds.append(["canister", "install", f"missing-{p.n}", "--mode", mode])
                cmds.append(["canister", "install", rng.choice(canisters), "--mode", mode])
            elif r < 0.97:
                amount = f"{rng.uniform(0.01, 50):.4f}" if rng.random() > 0.06 else "5000"
                to = f"principal-{rng.randrange(10**6)}"
                memo = str(rng.randrange(10**9))
                cmds.append(["ledger", "transfer", to, "--icp", amount, "--memo", memo, *net])
            else:
                cmds.append(["canister", "install", rng.choice(canisters), "--mode", "fast"])
        if rng.random() < 0.6:
            cmds.append(["stop"])
        return cmds


class Devsy(Tool):
    app = "demo-devsy"
    PROVIDERS: ClassVar[list[str]] = [
        "docker",
        "docker",
        "docker",
        "kubernetes",
        "kubernetes",
        "ssh",
        "aws",
        "mine",
    ]
    SOURCES: ClassVar[dict[str, str]] = {
        "git": "https://github.com/example/project-{n}.git",
        "image": "ghcr.io/example/devimage-{n}:latest",
        "local": "./workspace",
        "container": "container:c{n}",
        "unknown": "project-{n}",
    }

    @staticmethod
    def module() -> Any:
        import demo_devsy.cli

        return demo_devsy.cli

    def invoke(self, person: Person, argv: list[str], telemetry: Any, env: Any) -> None:
        app = self.cli.build(telemetry, env)
        _click_like(lambda: app(args=argv, prog_name="demo-devsy"))

    def setup(self, person: Person) -> None:
        (person.project / "workspace").mkdir(parents=True, exist_ok=True)

    def session(self, p: Person) -> list[list[str]]:
        rng, mem = p.rng, p.memory
        cmds: list[list[str]] = []
        if not mem.get("providers"):
            first = p.traits["provider"]
            name = f"my-provider-{p.n}" if first == "mine" else first
            mem["providers"] = [name]
            cmds.append(["provider", "add", name])
        if rng.random() < 0.1:
            cmds.append(["version"])
        if rng.random() < 0.05:
            cmds.append(["provider", "delete", f"typo-{p.n}"])
        kind = p.traits["source"] if rng.random() < 0.8 else rng.choice(list(self.SOURCES))
        source = self.SOURCES[kind].format(n=p.n)
        if kind == "local" and rng.random() < 0.08:
            source = "./workspcae"
        up = ["up", source]
        if rng.random() < 0.4:
            up += ["--ide", p.traits["ide"]]
        if rng.random() < 0.1:
            up.append("--recreate")
        cmds.append(up)
        if rng.random() < 0.2:
            cmds.append(["provider", "list"])
        if rng.random() < 0.04:
            extra = rng.choice(["kubernetes", "ssh", "gcloud"])
            if extra not in mem["providers"]:
                mem["providers"].append(extra)
                cmds.append(["provider", "add", extra])
        if rng.random() < 0.05:
            cmds.append(["context", "set-options", "-o", f"IDE={p.traits['ide']}"])
        if p.traits["context_off"] and not mem.get("context_off") and rng.random() < 0.1:
            mem["context_off"] = True  # from now on this person's default context sends nothing
            cmds.append(["context", "set-options", "-o", "TELEMETRY=false"])
        return cmds


class CfDev(Tool):
    app = "demo-cfdev"

    @staticmethod
    def module() -> Any:
        import demo_cfdev.cli

        return demo_cfdev.cli

    def invoke(self, person: Person, argv: list[str], telemetry: Any, env: Any) -> None:
        with contextlib.suppress(SystemExit):
            self.cli.run_cli(argv, env, telemetry)

    def session(self, p: Person) -> list[list[str]]:
        rng, mem = p.rng, p.memory
        cmds: list[list[str]] = []
        start = ["start"]
        if p.traits["iso"]:
            bad = rng.random() < 0.05
            start += ["-f", str(DATA / "isos" / ("corrupt.iso" if bad else "pcfdev-v1.iso"))]
        if rng.random() < 0.25:
            start += ["-m", rng.choice(["4096", "8192", "8192", "2048"])]
        if rng.random() < 0.3:
            start += ["-c", rng.choice(["2", "4", "4", "8"])]
        cmds.append(start)
        if rng.random() < 0.7:
            cmds.append(["stop"])
        if mem.get("last") and not mem.get("uninstalled") and p.traits["uninstalls"]:
            mem["uninstalled"] = True
            cmds.append(["uninstall"])
        return cmds


# --- the simulation ------------------------------------------------------------------------------


def make_person(tool: str, n: int, rng: random.Random, homes: Path) -> Person:
    first = int(DAYS * math.sqrt(rng.random()))  # more people join later: the tool grows
    life = rng.expovariate(1 / 60)
    consent = rng.choices(["on", "off", "local", "ci"], [70, 22, 3, 5])[0]
    person = Person(
        tool=tool,
        n=n,
        rng=random.Random(rng.random()),
        home=homes / tool / f"{n:03d}",
        first_day=first,
        last_day=min(DAYS, int(first + life)),
        activity=rng.uniform(0.15, 0.7),
        consent=consent,
        upgrade_lag=rng.expovariate(1 / 8),
    )
    t = person.traits
    t["platform"] = platform(tool, rng)
    if tool == "demo-dfx":
        t["project"] = rng.random() < 0.6
        t["mainnet"] = rng.random() < 0.35
    elif tool == "demo-devsy":
        t["provider"] = rng.choice(Devsy.PROVIDERS)
        t["source"] = rng.choices(list(Devsy.SOURCES), [50, 20, 15, 10, 5])[0]
        t["ide"] = rng.choices(
            ["vscode", "intellij", "goland", "pycharm", "jupyter"], [8, 2, 2, 2, 1]
        )[0]
        t["context_off"] = rng.random() < 0.08
        if rng.random() < 0.3:
            t["env"] = {"DEMO_DEVSY_UI": "true"}
    else:
        t["iso"] = rng.random() < 0.4
        t["uninstalls"] = rng.random() < 0.25
    return person


def platform(tool: str, rng: random.Random) -> dict[str, str]:
    """Operating system, CPU and Python of a simulated person (one machine each)."""
    weights = {"demo-dfx": [45, 55, 0], "demo-devsy": [40, 45, 15], "demo-cfdev": [35, 40, 25]}
    os_name = rng.choices(["linux", "macos", "windows"], weights[tool])[0]
    arm = {"linux": 0.15, "macos": 0.7, "windows": 0.05}[os_name]
    return {
        "os": os_name,
        "arch": "arm64" if rng.random() < arm else "x86_64",
        "python": rng.choices(["3.11", "3.12", "3.13"], [4, 4, 2])[0],
    }


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """The tools print for people; the simulation keeps its own output readable."""
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        yield


def simulate(tool: Tool, people: list[Person], start: float, stats: dict[str, int]) -> None:
    for person in people:
        simulate_person(tool, person, start, stats)


def simulate_person(tool: Tool, person: Person, start: float, stats: dict[str, int]) -> None:
    """One person's 90 days: every command a fresh ``Telemetry`` and a fresh run of the tool."""
    person.project.mkdir(parents=True, exist_ok=True)
    tool.setup(person)
    state_dir = str(person.home / "state")
    config_dir = str(person.home / "config")
    rng = person.rng
    clock = Clock(start + person.first_day * 86400 + rng.uniform(8, 18) * 3600)

    def telemetry(env: Any, day: float, interactive: bool) -> Any:
        return tool.cli.make_telemetry(
            env,
            policy=tool.policy,
            app_version=person.version(day),
            state_dir=state_dir,
            config_dir=config_dir,
            clock=clock,
            interactive=interactive,
            upload="manual",
            cwd=str(person.project),
            platform=person.traits["platform"],
        )

    def env_for() -> Any:
        def work(seconds: float) -> None:
            clock.advance(seconds * rng.lognormvariate(0, 0.35))

        return tool.cli.Env(
            environ=person.environ(), cwd=str(person.project), sleep=work, clock=clock
        )

    interactive = person.consent != "ci"
    if person.consent != "ci":  # what they answered at the first prompt
        with quiet():
            telemetry(env_for(), person.first_day, False).cli([person.consent])
    for day in range(person.first_day, person.last_day + 1):
        if day != person.first_day and rng.random() > person.activity:
            continue
        clock.now = max(clock.now, start + day * 86400 + rng.uniform(7, 21) * 3600)
        person.memory["last"] = day >= person.last_day - 1
        for argv in tool.session(person):
            env = env_for()
            t = telemetry(env, day, interactive)
            with quiet():
                tool.invoke(person, argv, t, env)
            stats["commands"] += 1
            clock.advance(rng.uniform(5, 300))
        if clock.now - person.last_upload >= UPLOAD_EVERY_DAYS * 86400:
            upload(telemetry(env_for(), day, interactive), person, stats)
    upload(telemetry(env_for(), person.last_day, interactive), person, stats)


def upload(t: Any, person: Person, stats: dict[str, int]) -> None:
    if t.state != "on":
        return
    result = t.upload_now()
    person.last_upload = t.now()
    stats["uploads"] += 1
    stats["sent"] += result.sent
    stats["dropped"] += result.dropped


# --- main -----------------------------------------------------------------------------------------


def report(app: str) -> None:
    print(f"\n{'=' * 30} optin report --app {app} --days 90 {'=' * 30}", flush=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optin",
            "report",
            "--db",
            f"sqlite:///{DATA / 'optin.db'}",
            "--app",
            app,
            "--days",
            "90",
            "--policies",
            str(DATA / "policies"),
        ],
        capture_output=True,
        text=True,
    )
    print(proc.stdout.rstrip() or proc.stderr.rstrip(), flush=True)


def run_tool(app: str, endpoint: str, start: float, homes: str) -> dict[str, Any]:
    """Simulate every person of one tool (in a worker process); returns the counts."""
    tool = {"demo-dfx": Dfx, "demo-devsy": Devsy, "demo-cfdev": CfDev}[app](endpoint)
    rng = random.Random(f"{SEED}-{app}")
    people = [make_person(app, n, rng, Path(homes)) for n in range(PEOPLE[app])]
    prefix = app.upper().replace("-", "_")
    for person in people:
        # Each person's environment points the tool at this collector, as a user's would.
        person.traits.setdefault("env", {})[f"{prefix}_TELEMETRY_ENDPOINT"] = endpoint
    stats = {"people": len(people), "commands": 0, "uploads": 0, "sent": 0, "dropped": 0}
    t0 = time.monotonic()
    simulate(tool, people, start, stats)
    stats["seconds"] = round(time.monotonic() - t0, 1)
    return stats


def scratch_dir() -> str:
    """Where the simulated people live: memory if the machine has it (thousands of small files)."""
    shm = Path("/dev/shm")
    base = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    return tempfile.mkdtemp(prefix="optin-demo-people-", dir=base)


def dashboard(endpoint: str) -> str:
    """``dashboard at URL, `` when the collector serves one."""
    for path in ("/dashboard/", "/"):
        try:
            with urllib.request.urlopen(endpoint + path, timeout=5) as r:
                if r.status == 200:
                    return f"dashboard at {endpoint}{path}, "
        except OSError:  # HTTPError (a 404) included
            continue
    return ""


def publish() -> str:
    """``optin publish``: the open-data site (small counts suppressed)."""
    out = DATA / "site"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "optin",
            "publish",
            "--db",
            f"sqlite:///{DATA / 'optin.db'}",
            "--policies",
            str(DATA / "policies"),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        return f"optin publish failed: {proc.stderr.strip()}"
    return f"Open-data site (counts below 10 suppressed): {out / 'index.html'}"


def main() -> int:
    began = time.monotonic()
    stop_previous()
    shutil.rmtree(DATA, ignore_errors=True)
    (DATA / "policies").mkdir(parents=True)
    (DATA / "isos").mkdir()
    (DATA / "isos" / "pcfdev-v1.iso").write_bytes(b"PCFDEV-ISO simulated image")
    (DATA / "isos" / "corrupt.iso").write_bytes(b"not an image")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    for app, module in (("demo-dfx", Dfx), ("demo-devsy", Devsy), ("demo-cfdev", CfDev)):
        shutil.copy(module.module().POLICY, DATA / "policies" / f"{app}.toml")
    pid = start_collector(port)
    print(f"collector: {endpoint} (PID {pid}), SQLite at {DATA / 'optin.db'}", flush=True)

    # The window ends a day before now, so that no simulated hour lies in the future.
    start = time.time() - (DAYS + 1) * 86400
    homes = scratch_dir()
    try:
        with ProcessPoolExecutor(max_workers=2) as pool:
            jobs = {app: pool.submit(run_tool, app, endpoint, start, homes) for app in PEOPLE}
            for app, job in jobs.items():
                s = job.result()
                print(
                    f"{app}: {s['people']} people, {s['commands']} commands, "
                    f"{s['uploads']} uploads, {s['sent']} events accepted, "
                    f"{s['dropped']} refused ({s['seconds']} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(homes, ignore_errors=True)
    for app in PEOPLE:
        report(app)
    site = publish()
    elapsed = time.monotonic() - began
    print(
        f"\nDone in {elapsed:.0f} s. The collector is still running at {endpoint} "
        f"(PID {pid}; {dashboard(endpoint)}log in demo-data/collector.log).\n"
        f"{site}\n"
        f"Stop it with: kill {pid}",
        flush=True,
    )
    summary = {"endpoint": endpoint, "pid": pid, "seconds": round(elapsed, 1)}
    (DATA / "demo.json").write_text(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
