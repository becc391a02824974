"""The one place that decides whether telemetry is on, off or local, and why.

States: ``on`` (record and upload), ``local`` (record for the user's own ``telemetry report``,
never upload), ``off`` (nothing at all), and unset, which becomes a one-time question at an
interactive terminal (``ask``) or ``off`` everywhere else. Overrides, strongest first:

1. ``DO_NOT_TRACK`` set to anything but ``0``/``false``/empty -> off.
2. ``<APP>_DISABLE_TELEMETRY`` set to anything but ``0``/``false``/empty -> off.
3. The host tool's own override: ``Telemetry(..., override=fn)``; ``fn()`` returns ``None`` (no
   opinion), ``"off"``, or ``("off", "why")``. Anything else it returns, or raises, means off.
   Example: Devsy's per-context ``TELEMETRY=false``.
4. ``<APP>_TELEMETRY=on|off|local``. Any other non-empty value is off (fail closed). In CI
   (``CI`` or a well-known CI variable set) this is the *only* way to collect.
5. A per-project file ``.optin.toml`` in the working directory or any parent::

       telemetry = "off"        # every optin-instrumented tool, in this tree
       [sample-cli]
       telemetry = "local"      # one tool, by app id

   A project file can only restrict: ``off``, or ``local`` (caps a stored ``on`` to local). It
   can never grant consent on a user's behalf, so ``on`` there is ignored. An unreadable file or
   an unknown value is off.
6. The stored choice, ``consent.json`` in the config directory (state, policy version, date).
   An unreadable or corrupt file is off and nobody is asked. A ``yes`` given to an older policy
   version, or older than ``settings.consent_expiry_months``, is asked again at a terminal (and
   is off meanwhile); a ``no`` is never asked again.
"""

import os
import sys
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import IO, Any

    from optin.policy import Policy

    #: ``override()`` -> None, "off", or ("off", reason).
    Override = Callable[[], "str | tuple[str, str] | None"]

__all__ = [
    "CONSENT_FILE",
    "PROJECT_FILE",
    "Decision",
    "Stored",
    "ask",
    "is_ci",
    "read_stored",
    "resolve",
    "write_stored",
]

CONSENT_FILE = "consent.json"
PROJECT_FILE = ".optin.toml"
STATES = ("on", "off", "local")
_FALSE = ("", "0", "false", "no", "off")
_CI_VARS = (
    "CI",
    "CONTINUOUS_INTEGRATION",
    "BUILD_NUMBER",
    "GITHUB_ACTIONS",
    "GITLAB_CI",
    "BUILDKITE",
    "CIRCLECI",
    "TRAVIS",
    "TF_BUILD",
    "JENKINS_URL",
    "TEAMCITY_VERSION",
    "CODEBUILD_BUILD_ID",
)


class Stored:
    """The user's recorded choice: state, the policy version agreed to, the date (UTC)."""

    __slots__ = ("date", "policy_version", "state")

    def __init__(self, state: str, policy_version: int, date: str) -> None:
        self.state = state
        self.policy_version = policy_version
        self.date = date  # YYYY-MM-DD

    def __repr__(self) -> str:
        return f"Stored({self.state!r}, {self.policy_version!r}, {self.date!r})"


class Decision:
    """The verdict for this run: ``state`` is on, off, local or ask; ``source`` says who decided."""

    __slots__ = ("reason", "source", "state", "stored")

    def __init__(self, state: str, source: str, reason: str, stored: Stored | None = None) -> None:
        self.state = state
        self.source = source
        self.reason = reason
        self.stored = stored

    def __repr__(self) -> str:
        return f"Decision({self.state!r}, {self.source!r}, {self.reason!r})"


class _Corrupt:
    """Marker for a consent file that exists but cannot be used."""

    def __init__(self, why: str) -> None:
        self.why = why


def is_ci(environ: "Mapping[str, str]") -> bool:
    """True when a CI system is detected through its usual environment variables."""
    return any(environ.get(var, "").strip().lower() not in _FALSE for var in _CI_VARS)


def _truthy(value: str | None) -> bool:
    return value is not None and value.strip().lower() not in _FALSE


def read_stored(config_dir: str) -> Stored | _Corrupt | None:
    """The stored choice; ``None`` if there is none, a :class:`_Corrupt` if unusable."""
    path = os.path.join(config_dir, CONSENT_FILE)
    try:
        with open(path, "rb") as f:
            raw = f.read(4096)
    except FileNotFoundError:
        return None
    except OSError as exc:
        return _Corrupt(f"cannot read {path}: {exc.strerror}")
    try:
        data = _parse(raw)
        state, version, date = data["state"], data["policy_version"], data["date"]
        if state not in STATES or type(version) is not int or not _parse_date(date):
            raise ValueError
    except (ValueError, KeyError, TypeError):
        return _Corrupt(f"{path} is not a valid consent file")
    return Stored(state, version, date)


def _canonical(state: str, policy_version: int, date: str) -> str:
    return f'{{"state": "{state}", "policy_version": {policy_version}, "date": "{date}"}}\n'


def _parse(raw: bytes) -> "Any":
    """Read the file we write without importing ``json`` (and ``re``) on the hot path."""
    text = raw.decode("utf-8")
    head = '{"state": "'
    if text.startswith(head):
        state, _, rest = text[len(head) :].partition('", "policy_version": ')
        version, _, rest = rest.partition(', "date": "')
        date, _, rest = rest.partition('"}')
        if state in STATES and version.isdigit() and rest.strip() == "":
            return {"state": state, "policy_version": int(version), "date": date}
    import json  # written by hand, or by another version: the slow, general path

    return json.loads(text)


def write_stored(config_dir: str, state: str, policy_version: int, now: float) -> None:
    """Record a choice atomically (temporary file, then rename). Raises OSError."""
    os.makedirs(config_dir, exist_ok=True)
    date = time.strftime("%Y-%m-%d", time.gmtime(now))
    path = os.path.join(config_dir, CONSENT_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(_canonical(state, int(policy_version), date))
    os.replace(tmp, path)


def _parse_date(value: object) -> tuple[int, int, int] | None:
    if not isinstance(value, str) or len(value) != 10:
        return None
    try:
        y, m, d = (int(part) for part in value.split("-"))
    except ValueError:
        return None
    return (y, m, d) if 1 <= m <= 12 and 1 <= d <= 31 else None


def _months_since(date: str, now: float) -> int:
    y0, m0, d0 = _parse_date(date) or (1970, 1, 1)
    t = time.gmtime(now)
    months = (t.tm_year * 12 + t.tm_mon) - (y0 * 12 + m0)
    return months - 1 if t.tm_mday < d0 else months


def _project_setting(app: str, cwd: str) -> tuple[str, str] | None:
    """``(value, path)`` from the nearest ``.optin.toml``, or None when there is none."""
    here = os.path.abspath(cwd)
    while True:
        path = os.path.join(here, PROJECT_FILE)
        if os.path.isfile(path):
            return _read_project(app, path), path
        parent = os.path.dirname(here)
        if parent == here:
            return None
        here = parent


def _read_project(app: str, path: str) -> str:
    import tomllib

    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = tomllib.load(f)
    except (OSError, ValueError):
        return "off"
    section = data.get(app)
    value = section.get("telemetry") if isinstance(section, dict) else None
    if value is None:
        value = data.get("telemetry")
    if value is None:
        return "none"
    return value if value in STATES else "off"


def resolve(
    app: str,
    policy: "Callable[[], Policy]",
    environ: "Mapping[str, str]",
    config_dir: str,
    *,
    now: float,
    interactive: bool,
    cwd: str | None = None,
    override: "Override | None" = None,
) -> Decision:
    """Decide for this run. Reads at most the consent file and the project file; writes nothing.

    ``policy`` is called only when a stored yes must be checked against the policy's version and
    expiry: deciding *off* never needs the whole policy parsed.
    """
    from optin.policy import env_prefix

    prefix = env_prefix(app)
    if _truthy(environ.get("DO_NOT_TRACK")):
        return Decision("off", "DO_NOT_TRACK", "DO_NOT_TRACK is set")
    disable = f"{prefix}_DISABLE_TELEMETRY"
    if _truthy(environ.get(disable)):
        return Decision("off", disable, f"{disable} is set")
    if override is not None:
        try:
            said = override()
        except Exception as exc:  # the host's hook must never break the tool
            return Decision(
                "off", "host override", f"the tool's override failed ({type(exc).__name__})"
            )
        if said is not None:
            why = (
                said[1] if isinstance(said, tuple) and len(said) == 2 else "the tool turned it off"
            )
            return Decision("off", "host override", str(why))
    var = f"{prefix}_TELEMETRY"
    value = environ.get(var, "").strip().lower()
    if value:
        if value in STATES:
            return Decision(value, var, f"{var}={value}")
        return Decision("off", var, f"{var} has an unrecognised value (fail closed)")
    if is_ci(environ):
        return Decision("off", "CI", f"running in CI; set {var}=on to collect here")
    cap = "on"
    project = _project_setting(app, cwd if cwd is not None else os.getcwd())
    if project is not None:
        setting, path = project
        if setting == "off":
            return Decision("off", "project file", f"{path} says off")
        if setting == "local":
            cap = "local"
    stored = read_stored(config_dir)
    if isinstance(stored, _Corrupt):
        return Decision("off", "consent file", f"{stored.why} (fail closed)")
    if stored is None:
        if interactive:
            return Decision("ask", "not asked yet", "no choice recorded yet")
        return Decision("off", "not asked yet", "no choice recorded and not at a terminal")
    if stored.state == "off":
        return Decision("off", "stored choice", f"you said no on {stored.date}", stored)
    loaded = policy()
    expiry = loaded.settings.consent_expiry_months
    stale = ""
    if stored.policy_version < loaded.version:
        stale = f"the policy changed (version {stored.policy_version} -> {loaded.version})"
    elif _months_since(stored.date, now) >= expiry:
        stale = f"your choice of {stored.date} is older than {expiry} months"
    if stale:
        state = "ask" if interactive else "off"
        return Decision(state, "stored choice", f"{stale}; asking again at a terminal", stored)
    state = "local" if cap == "local" else stored.state
    source = "project file" if state != stored.state else "stored choice"
    return Decision(state, source, f"you chose {stored.state} on {stored.date}", stored)


def ask(name: str, tool: str, err: "IO[str] | None" = None) -> bool:
    """The one-time question: on stderr, answered from the terminal. Default, EOF, Ctrl-C: no."""
    err = err if err is not None else sys.stderr
    question = (
        f"{name} can send anonymous usage statistics to its maintainers: which commands\n"
        "and options are used, whether they fail, how long they take, and your platform.\n"
        "Never arguments, paths, names or messages. Details: "
        f"'{tool} telemetry status'; change your mind any time with\n"
        f"'{tool} telemetry on|off|local'.\n"
        "Share anonymous usage statistics? [y/N] "
    )
    try:
        err.write(question)
        err.flush()
        answer = _read_answer()
    except (KeyboardInterrupt, EOFError, OSError, ValueError):
        answer = ""
    yes = answer.strip().lower() in ("y", "yes")
    try:
        if not answer:  # EOF or Ctrl-C: the cursor is still on the question's line
            err.write("\n")
        err.write("Thank you: telemetry is on.\n" if yes else "Telemetry stays off.\n")
        err.flush()
    except (KeyboardInterrupt, OSError, ValueError):
        pass
    return yes


def _read_answer() -> str:
    try:
        tty = open("/dev/tty", encoding="utf-8", errors="replace")  # noqa: SIM115
    except OSError:
        line = sys.stdin.readline()
    else:
        with tty:
            line = tty.readline()
    if not line:
        raise EOFError
    return line
