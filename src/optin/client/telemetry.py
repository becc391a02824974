"""The client's front door: ``Telemetry`` and the ``CommandRecorder`` integrations drive.

Cheap until used: constructing a ``Telemetry`` loads the policy and touches nothing else. The
first ``command()`` or ``event()`` asks :mod:`.consent` what to do; when the answer is off, the
recorder is a shared do-nothing object, so no event is built, no file or directory is made, no
process is started and no socket is opened.

Telemetry never breaks its host: every failure inside it (a read-only or full home, a damaged
state file) turns telemetry off for the rest of the run, with a line on stderr only when
``<APP>_TELEMETRY_DEBUG=1``. It never changes the tool's exit code and never swallows the tool's
exceptions.
"""

import os
import sys
import time

from optin.client import consent
from optin.policy import Policy, PolicyError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from types import TracebackType
    from typing import Any, Literal

    from optin.client.capture import Context
    from optin.client.consent import Override
    from optin.client.transport import Transport
    from optin.client.upload import UploadResult

__all__ = ["CommandRecorder", "Telemetry", "platform_config_dir", "platform_state_dir"]

OUTCOMES = ("success", "failure", "usage_error", "interrupted")
_PLATFORM_KEYS = ("os", "arch", "python", "ci", "interactive")
UPLOAD_MODES = ("background", "inline", "manual")


class CommandRecorder:
    """Collects what one command did; the event is built only in :meth:`finish`."""

    __slots__ = ("_dims", "_done", "_options", "_positionals", "_start", "_t", "path")

    def __init__(self, telemetry: "Telemetry", path: str, start: float) -> None:
        self._t = telemetry
        self.path = path
        self._start = start
        self._options: dict[str, object] = {}
        self._positionals: int | None = None
        self._dims: dict[str, str] = {}
        self._done = False

    @property
    def active(self) -> bool:
        """False for the do-nothing recorder of telemetry that is off: skip any work for it."""
        return True

    def option(self, name: str, value: object = None) -> None:
        """An option given on the command line; its value is kept only if the policy allows it."""
        self._options[name] = value

    def positionals(self, count: int) -> None:
        """How many positional arguments: kept only where the policy asks for the count."""
        self._positionals = count

    def dimension(self, name: str, value: object) -> None:
        """A custom dimension of the policy; a value outside its closed list becomes ``other``."""
        dim = self._t.policy.dimensions.get(name)
        if dim is not None:
            self._dims[name] = dim.coerce(value)

    def finish(
        self, outcome: str, exit_code: int | None, error: BaseException | str | None = None
    ) -> None:
        """Record the command once (later calls do nothing). Never raises."""
        if self._done:
            return
        self._done = True
        self._t._finish(self, outcome, exit_code, error)

    def __enter__(self) -> "CommandRecorder":
        self._t._stack.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> "Literal[False]":
        if self._t._stack and self._t._stack[-1] is self:
            self._t._stack.pop()
        if exc is None:
            self.finish("success", 0)
        elif isinstance(exc, KeyboardInterrupt):
            self.finish("interrupted", 130)
        elif isinstance(exc, SystemExit):
            code = exc.code
            if code is None or code == 0:
                self.finish("success", 0)
            else:
                self.finish("failure", code if isinstance(code, int) else 1)
        else:
            self.finish("failure", 1, exc)
        return False  # the tool's exception propagates unchanged


class _NullRecorder(CommandRecorder):
    """What ``command()`` returns when telemetry is off: every method does nothing."""

    __slots__ = ()

    def __init__(self) -> None:
        self.path = ""
        self._done = True

    @property
    def active(self) -> bool:
        return False

    def option(self, name: str, value: object = None) -> None:
        pass

    def positionals(self, count: int) -> None:
        pass

    def dimension(self, name: str, value: object) -> None:
        pass

    def finish(
        self, outcome: str, exit_code: int | None, error: BaseException | str | None = None
    ) -> None:
        pass

    def __enter__(self) -> CommandRecorder:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: "TracebackType | None",
    ) -> "Literal[False]":
        return False


_NULL = _NullRecorder()


class Telemetry:
    """Telemetry for one tool, governed by one policy.

    ``policy``: a path to the TOML policy or a loaded :class:`~optin.policy.Policy`.
    Keyword arguments, for hosts, tests and simulations:

    - ``state_dir``, ``config_dir``: instead of the platform's directories
      (:func:`platform_state_dir`, :func:`platform_config_dir`).
    - ``environ``: a mapping instead of ``os.environ``; ``cwd``: where the project file is sought.
    - ``clock``: ``() -> float`` Unix seconds; durations are measured with it too when given.
    - ``override``: the host's own switch, ``() -> None | "off" | ("off", reason)`` (see
      :mod:`.consent`).
    - ``interactive``: whether a person is at a terminal (default: stdin and stderr are TTYs).
    - ``upload``: ``"background"`` (spawn the detached uploader when due, the default),
      ``"inline"`` (upload in this process when due; simulations), ``"manual"`` (only
      :meth:`upload_now`).
    - ``transport``: the uploader's :class:`~optin.client.transport.Transport` for foreground
      uploads (default: urllib).
    - ``tool``: the command users type (for messages), default the policy's name.
    - ``platform``: for simulations, replaces detected context fields (``os``, ``arch``,
      ``python``, ``ci``, ``interactive``) in every event, e.g. ``{"os": "macos"}``.
    """

    def __init__(
        self,
        policy: str | os.PathLike[str] | Policy,
        app_version: str = "0",
        *,
        state_dir: str | os.PathLike[str] | None = None,
        config_dir: str | os.PathLike[str] | None = None,
        environ: "Mapping[str, str] | None" = None,
        clock: "Callable[[], float] | None" = None,
        override: "Override | None" = None,
        interactive: bool | None = None,
        upload: str = "background",
        transport: "Transport | None" = None,
        cwd: str | os.PathLike[str] | None = None,
        tool: str | None = None,
        platform: "Mapping[str, object] | None" = None,
    ) -> None:
        if upload not in UPLOAD_MODES:
            raise ValueError(f"upload must be one of {', '.join(UPLOAD_MODES)}, not {upload!r}")
        self.problem: str | None = None
        self._policy: Policy | None = None
        self._policy_path: str | None = None
        if isinstance(policy, Policy):
            self._policy = policy
            app: str | None = policy.app
        else:
            from optin.policy import peek_app

            # Deciding "off" needs only the app id: the TOML is parsed only when telemetry is on.
            self._policy_path = os.fspath(policy)
            app = peek_app(self._policy_path)
            if app is None:
                app = self._load_policy(cache=False).app
        assert app is not None
        self.app: str = app
        self.app_version = app_version
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self._clock = clock
        self._override = override
        self._interactive = interactive
        self._upload = upload
        self._transport = transport
        self._cwd = None if cwd is None else os.fspath(cwd)
        self._tool = tool
        self._platform = platform
        self.state_dir = (
            os.fspath(state_dir) if state_dir is not None else platform_state_dir(app, self.environ)
        )
        self.config_dir = (
            os.fspath(config_dir)
            if config_dir is not None
            else platform_config_dir(app, self.environ)
        )
        from optin.policy import env_prefix

        self.env_prefix = env_prefix(app)
        self.debug = consent._truthy(self.environ.get(f"{self.env_prefix}_TELEMETRY_DEBUG"))
        self._decision: consent.Decision | None = None
        self._stack: list[CommandRecorder] = []
        self._ctx: Context | None = None
        self._ready = False
        self._pinged = -1

    # --- the policy ---------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        """The loaded policy (parsed on first use; cached in the state directory when on)."""
        if self._policy is None:
            on = self._decision is not None and self._decision.state in ("on", "local")
            return self._load_policy(cache=on)
        return self._policy

    def _load_policy(self, cache: bool) -> Policy:
        assert self._policy_path is not None
        from optin.policy import load, load_cached

        try:
            if cache:
                path = os.path.join(self.state_dir, "policy.cache")
                # On a miss the state directory is made first: the first run caches too.
                self._policy = load_cached(self._policy_path, path, self._prepare)
            else:
                self._policy = load(self._policy_path)
        except (PolicyError, OSError) as exc:  # a packaging bug must not break every command
            self.problem = f"telemetry disabled: {exc}"
            self._policy = _EMPTY_POLICY
            self._decision = consent.Decision("off", "policy", self.problem)
        return self._policy

    @property
    def endpoint(self) -> str:
        """The collector: ``<APP>_TELEMETRY_ENDPOINT`` or the policy's."""
        return self.environ.get(f"{self.env_prefix}_TELEMETRY_ENDPOINT") or self.policy.endpoint

    @property
    def tool(self) -> str:
        """The command people type, for messages."""
        return self._tool or self.policy.name

    # --- consent ---------------------------------------------------------------------------

    def now(self) -> float:
        return self._clock() if self._clock is not None else time.time()

    def is_interactive(self) -> bool:
        if self._interactive is not None:
            return self._interactive
        try:
            return sys.stdin.isatty() and sys.stderr.isatty()
        except (AttributeError, ValueError):
            return False

    def decision(self) -> consent.Decision:
        """This run's verdict (without asking): on, off, local or ask, and who decided."""
        if self._decision is None:
            self._decision = self._resolve()
            self._say(f"telemetry {self._decision.state}: {self._decision.reason}")
        return self._decision

    def _resolve(self) -> consent.Decision:
        if self.problem:
            return consent.Decision("off", "policy", self.problem)
        if not (os.path.isabs(self.state_dir) and os.path.isabs(self.config_dir)):
            return consent.Decision("off", "no home", "no home directory to keep telemetry in")
        var = f"{self.env_prefix}_TELEMETRY_ENDPOINT"
        endpoint = self.environ.get(var)
        if endpoint and not endpoint.startswith(("http://", "https://")):
            return consent.Decision("off", var, f"{var} is not an http(s) URL (fail closed)")
        interactive = self.is_interactive() and not consent.is_ci(self.environ)
        try:
            decision = consent.resolve(
                self.app,
                lambda: self._load_policy(cache=True) if self._policy is None else self._policy,
                self.environ,
                self.config_dir,
                now=self.now(),
                interactive=interactive,
                cwd=self._cwd,
                override=self._override,
            )
        except Exception as exc:  # fail closed, never break the tool
            return consent.Decision("off", "error", f"cannot decide ({type(exc).__name__})")
        if self.problem:  # the policy failed to load while deciding
            return consent.Decision("off", "policy", self.problem)
        return decision

    @property
    def state(self) -> str:
        """``on``, ``off`` or ``local`` for this run (``ask`` until the question was answered)."""
        return self.decision().state

    def _ask(self) -> None:
        """Put the one-time question, record the answer; no is stored so we never nag."""
        yes = consent.ask(self.policy.name, self.tool)
        state = "on" if yes else "off"
        try:
            self.set_choice(state)
        except OSError as exc:
            self._disable(f"cannot record your choice: {exc.strerror}")
            return
        # Decide again from the stored answer: a project file may still cap it to local.
        self._decision = self._resolve()

    def _disable(self, why: str) -> None:
        self._decision = consent.Decision("off", "error", why)
        self._say(f"telemetry off for this run: {why}")

    def _say(self, line: str) -> None:
        if self.debug:
            try:
                sys.stderr.write(f"{self.tool} telemetry: {line}\n")
                sys.stderr.flush()
            except (OSError, ValueError):
                pass

    # --- recording ---------------------------------------------------------------------------

    def command(self, path: str) -> CommandRecorder:
        """A recorder for one command (a context manager); a do-nothing one when off."""
        try:
            decision = self.decision()
            if decision.state == "ask":
                self._ask()
                decision = self.decision()
            if decision.state not in ("on", "local"):
                return _NULL
            self.policy  # noqa: B018 - load it now: a broken policy turns telemetry off
            if self.decision().state not in ("on", "local"):
                return _NULL
            start = self._clock() if self._clock is not None else time.perf_counter()
            return CommandRecorder(self, path, start)
        except Exception as exc:
            self._disable(f"internal error ({type(exc).__name__})")
            return _NULL

    def dimension(self, name: str, value: object) -> None:
        """Set a dimension on the command being recorded (no effect outside one, or when off)."""
        if self._stack:
            self._stack[-1].dimension(name, value)

    def event(self, name: str, **properties: object) -> None:
        """Record a custom event of the policy (typed, closed properties); nothing when off."""
        try:
            if self.decision().state not in ("on", "local"):
                return
            from optin.client import capture

            now = self.now()
            self._prepare()
            dims = dict(self._stack[-1]._dims) if self._stack else {}
            sid = capture.session_id(self.state_dir, self.policy, now)
            event = capture.custom_event(
                self.policy, self._context(), sid, now, name, properties, dims
            )
            if event is None:
                self._say(f"event {name!r} is not in the policy: not recorded")
                return
            self._store([event], now)
        except OSError as exc:
            self._disable(f"cannot write to {self.state_dir}: {exc.strerror or exc}")
        except Exception as exc:
            self._disable(f"internal error ({type(exc).__name__})")

    def _finish(
        self,
        rec: CommandRecorder,
        outcome: str,
        exit_code: int | None,
        error: BaseException | str | None,
    ) -> None:
        try:
            if self.decision().state not in ("on", "local"):
                return  # turned itself off during the command (a write failed)
            from optin.client import capture

            now = self.now()
            end = self._clock() if self._clock is not None else time.perf_counter()
            if outcome not in OUTCOMES:
                outcome = "failure"
            if not isinstance(exit_code, int) or isinstance(exit_code, bool):
                exit_code = 0 if outcome == "success" else 1
            category = capture.error_category(self.policy, error)
            self._prepare()
            sid = capture.session_id(self.state_dir, self.policy, now)
            event = capture.command_event(
                self.policy,
                self._context(),
                sid,
                now,
                path=rec.path,
                options=rec._options,
                positionals=rec._positionals,
                dimensions=rec._dims,
                outcome=outcome,
                exit_code=exit_code,
                error=category,
                duration=end - rec._start,
            )
            self._store([event], now)
        except OSError as exc:
            self._disable(f"cannot write to {self.state_dir}: {exc.strerror or exc}")
        except Exception as exc:
            self._disable(f"internal error ({type(exc).__name__})")

    def _context(self) -> "Context":
        if self._ctx is None:
            from optin.client.capture import Context

            self._ctx = Context(
                self.app_version, consent.is_ci(self.environ), self.is_interactive()
            )
            if self._platform:
                self._ctx.fields.update(
                    (k, v) for k, v in self._platform.items() if k in _PLATFORM_KEYS
                )
        return self._ctx

    def _prepare(self) -> None:
        if not self._ready:
            try:  # one system call when it exists (every run but the first)
                os.mkdir(self.state_dir, 0o700)
            except FileExistsError:
                if not os.path.isdir(self.state_dir):
                    raise
            except FileNotFoundError:
                os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
            self._ready = True

    def _store(self, events: "list[dict[str, Any]]", now: float) -> None:
        from optin.client import capture  # the whole hot path: not .spool (see .capture)

        local = self.decision().state == "local"
        directory = os.path.join(self.state_dir, capture.LOCAL if local else capture.SPOOL)
        day = int(now // 86400)
        if self._pinged != day:  # once per process and UTC day (a simulation lives for months)
            self._pinged = day
            events = capture.active_pings(self.state_dir, self._context(), now) + events
        for event in events:
            capture.append(directory, event, self.policy.version, now)
            if self.debug:
                import json

                self._say(f"recorded {json.dumps(event, sort_keys=True)}")
        self._maintain(now, local)

    def _maintain(self, now: float, local: bool) -> None:
        """Start an upload (or, in local mode, a prune) when the schedule says it is due."""
        from optin.client import capture

        if not capture.due(self.state_dir, now):
            return
        following = now + self.policy.settings.upload_interval_hours * 3600
        if local:
            self._prune(now, capture.LOCAL)
            capture.set_next(self.state_dir, following)
            return
        if self._upload == "manual":
            return
        if self._upload == "inline":
            self.upload_now()
            return
        # Claim this slot before spawning, so concurrent commands do not all start one; the
        # uploader writes the real next time (interval or backoff) when it finishes.
        capture.set_next(self.state_dir, following)
        cwd = self._cwd if self._cwd is not None else os.getcwd()
        job: dict[str, object] = {
            "policy": self._policy_path,
            "state_dir": self.state_dir,
            "config_dir": self.config_dir,
            "endpoint": self.endpoint,
            "cwd": cwd,
        }
        if self._policy_path is None:  # a Policy object: hand its data over
            from optin.policy import to_data

            job["data"] = to_data(self.policy)
        _spawn(capture.dumps(job), self.environ)
        self._say("started the background upload")

    def _prune(self, now: float, which: str) -> None:
        from optin.client import spool

        settings = self.policy.settings
        with spool.lock(self.state_dir) as held:
            if not held:
                return
            dropped = spool.prune(
                self.state_dir,
                os.path.join(self.state_dir, which),
                settings.spool_max_events,
                settings.spool_max_age_days,
                now,
            )
            if any(dropped.values()):
                stats = spool.load_stats(self.state_dir)
                for key, count in dropped.items():
                    stats[key] = stats.get(key, 0) + count
                spool.save_stats(self.state_dir, stats)

    # --- commands and uploads ----------------------------------------------------------------

    def upload_now(self, timeout: float | None = None) -> "UploadResult":
        """Send the spool now, in this process (``telemetry upload``, simulations)."""
        from optin.client import upload

        if self.decision().state != "on":
            return upload.UploadResult(False, f"telemetry is {self.decision().state}: nothing sent")
        transport = self._transport
        if transport is None:
            from optin.client.transport import UrllibTransport

            transport = UrllibTransport()
        try:
            return upload.run(
                self.policy,
                state_dir=self.state_dir,
                config_dir=self.config_dir,
                endpoint=self.endpoint,
                transport=transport,
                environ=self.environ,
                clock=self.now,
                cwd=self._cwd,
                timeout=upload.TIMEOUT_SECONDS if timeout is None else timeout,
                still_on=lambda: self._still_on(),
            )
        except OSError as exc:
            return upload.UploadResult(False, f"cannot use {self.state_dir}: {exc.strerror}")

    def _still_on(self) -> bool:
        """Re-read consent (another process may have turned it off) keeping this run's overrides."""
        fresh = self._resolve()
        return fresh.state == "on" and self.decision().state == "on"

    def cli(self, argv: list[str]) -> int:
        """``<tool> telemetry on|off|local|status|show|upload|report``; returns the exit status."""
        from optin.client import commands

        return commands.run(self, list(argv))

    def set_choice(self, state: str) -> None:
        """Record the user's choice (``on``/``off``/``local``). Raises OSError.

        ``off`` wipes everything kept locally and sends nothing; ``local`` moves events still
        waiting for upload to the local-only store, so they are never sent.
        """
        from optin.client import spool

        if state not in consent.STATES:
            raise ValueError(f"not a telemetry state: {state!r}")
        consent.write_stored(self.config_dir, state, self.policy.version, self.now())
        if state == "off":
            spool.wipe(self.state_dir)
        elif state == "local":
            spool.move_all(
                os.path.join(self.state_dir, spool.SPOOL), os.path.join(self.state_dir, spool.LOCAL)
            )
        self._decision = None


_children: list[int] = []
_SH = "/bin/sh"


def _spawn(job: str, environ: "Mapping[str, str]") -> None:
    """Start ``python -m optin.client.upload JOB`` detached: new session, no terminal.

    ``os.posix_spawn`` costs well under a millisecond and needs no import; ``subprocess`` alone
    costs several milliseconds to import, so it is only the fallback (Windows). Python's own
    descriptors are not inherited (PEP 446), and the three standard ones go to ``/dev/null``.
    """
    import optin

    root = os.path.dirname(os.path.dirname(os.path.abspath(optin.__file__)))
    # -S: no site-packages scan at start-up (optin is found through PYTHONPATH, and the
    # uploader needs nothing but the standard library): less CPU taken from the tool.
    argv = [sys.executable, "-S", "-m", "optin.client.upload", job]
    for pid in _children[:]:  # reap earlier uploaders of a long-lived host
        try:
            if os.waitpid(pid, os.WNOHANG)[0]:
                _children.remove(pid)
        except ChildProcessError:
            _children.remove(pid)
    env = _child_env(environ, root)
    if hasattr(os, "posix_spawn"):
        null = os.devnull
        actions = [
            (os.POSIX_SPAWN_OPEN, 0, null, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, null, os.O_WRONLY, 0),
            (os.POSIX_SPAWN_OPEN, 2, null, os.O_WRONLY, 0),
        ]
        # No scheduler hints: SCHED_IDLE starves the uploader on a busy machine, and glibc's
        # posix_spawn refuses SCHED_BATCH. The uploader renices itself once it runs.
        program, args = sys.executable, argv
        if os.path.exists(_SH):
            # Start Python half a second later, through the shell: the tool has usually exited
            # by then, so on a small, busy machine the uploader's start-up (tens of ms of CPU)
            # does not compete with the tool the user is waiting for.
            program, args = _SH, [_SH, "-c", 'sleep 0.5; exec "$0" "$@"', *argv]
        _children.append(os.posix_spawn(program, args, env, file_actions=actions, setsid=True))
        return
    import subprocess

    flags = getattr(subprocess, "DETACHED_PROCESS", 0) | getattr(
        subprocess, "CREATE_NEW_PROCESS_GROUP", 0
    )
    child = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        env=env,
        creationflags=flags,
        start_new_session=not flags,
    )
    _children.append(child.pid)


def _child_env(
    environ: "Mapping[str, str]", root: str
) -> "Mapping[bytes, bytes] | Mapping[str, str]":
    """The uploader's environment: ``environ`` with ``root`` first on ``PYTHONPATH``.

    For ``os.environ`` on POSIX its bytes are copied as they are (``os.posix_spawn`` takes
    bytes): ``dict(os.environ)`` decodes every variable through Python-level calls, tens of
    microseconds with a usual environment, and ``posix_spawn`` then encodes them all again.
    """
    data = getattr(environ, "_data", None) if environ is os.environ else None
    if isinstance(data, dict) and os.supports_bytes_environ:
        raw: dict[bytes, bytes] = dict(data)
        path = (os.fsencode(root), raw.get(b"PYTHONPATH"))
        raw[b"PYTHONPATH"] = os.pathsep.encode().join(p for p in path if p)
        return raw
    env = dict(environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env


# --- where the client keeps its files ---------------------------------------------------------
# Here rather than in a module of their own: every command imports this module, and folding
# them in saved each command 0.33 M instructions of import machinery (about 0.1 ms).
#
# Linux and other Unix: ``$XDG_STATE_HOME/optin/<app>`` (default ``~/.local/state``) and
# ``$XDG_CONFIG_HOME/optin/<app>`` (default ``~/.config``). macOS: both under
# ``~/Library/Application Support/optin/<app>`` (``state/`` and ``config/``). Windows:
# ``%LOCALAPPDATA%\optin\<app>\state`` and ``%APPDATA%\optin\<app>``. Computing a path
# creates nothing: directories are made only when something is written, so a user who never
# consents never gets one.


def _home(environ: "Mapping[str, str]") -> str:
    """The home directory; a relative result (no home at all) makes telemetry turn itself off."""
    home = environ.get("HOME") or environ.get("USERPROFILE")
    return home if home else os.path.expanduser("~")


def _xdg(environ: "Mapping[str, str]", var: str, default: str) -> str:
    value = environ.get(var, "")
    # The XDG spec: a relative path is invalid and must be ignored.
    return value if os.path.isabs(value) else os.path.join(_home(environ), default)


def platform_state_dir(app: str, environ: "Mapping[str, str]", platform: str = sys.platform) -> str:
    """The directory for the spool, the session secret and the upload schedule."""
    if platform == "win32":
        base = environ.get("LOCALAPPDATA") or os.path.join(_home(environ), "AppData", "Local")
        return os.path.join(base, "optin", app, "state")
    if platform == "darwin":
        return os.path.join(_home(environ), "Library", "Application Support", "optin", app, "state")
    return os.path.join(
        _xdg(environ, "XDG_STATE_HOME", os.path.join(".local", "state")), "optin", app
    )


def platform_config_dir(
    app: str, environ: "Mapping[str, str]", platform: str = sys.platform
) -> str:
    """The directory of the consent file."""
    if platform == "win32":
        base = environ.get("APPDATA") or os.path.join(_home(environ), "AppData", "Roaming")
        return os.path.join(base, "optin", app)
    if platform == "darwin":
        return os.path.join(
            _home(environ), "Library", "Application Support", "optin", app, "config"
        )
    return os.path.join(_xdg(environ, "XDG_CONFIG_HOME", ".config"), "optin", app)


_EMPTY_POLICY = Policy(
    app="optin-disabled",
    name="this tool",
    version=1,
    endpoint="http://127.0.0.1",
    purpose="",
    commands={},
    dimensions={},
    events={},
    errors={},
)
