"""demo-devsy: the command line (typer), instrumented with optin.

The tool does no real work: it keeps its configuration (contexts, providers, context options)
in ``~/.demo-devsy/config.json`` and sleeps for a few milliseconds. It fails deterministically:
deleting or using a provider that is not configured raises ``ProviderNotFound``, adding one
twice ``ProviderAlreadyExists``, ``up`` with no provider ``NoProviderConfigured``, ``up`` of a
local path that does not exist ``SourceNotFound``.

Telemetry follows Devsy's page: an event for each command that loads the configuration (not
``version``, not ``--help``), with the provider, source type, IDE and desktop-or-CLI as
dimensions; opt-out with ``DEMO_DEVSY_DISABLE_TELEMETRY=true`` (handled by optin) or per context
with ``demo-devsy context set-options -o TELEMETRY=false`` (:func:`context_override`).
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from demo_devsy import __version__
from demo_devsy.env import Env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from optin import Telemetry
    from optin.policy import Policy

#: The policy ships inside the package, beside this module.
POLICY = Path(__file__).with_name("telemetry.toml")
DEFAULT_CONTEXT = "default"
_FALSE = ("false", "0", "no", "off")

try:  # typer >= 0.20 carries its own click; its ClickException is what typer prints as an error
    from typer._click.exceptions import ClickException
except ImportError:  # pragma: no cover - older typer uses click itself
    from click import ClickException  # type: ignore[assignment]


class DevsyError(ClickException):
    """An error the tool reports; its class name is the error category telemetry records."""


class ProviderNotFound(DevsyError):
    pass


class ProviderAlreadyExists(DevsyError):
    pass


class NoProviderConfigured(DevsyError):
    pass


class SourceNotFound(DevsyError):
    pass


class Ide(enum.StrEnum):
    vscode = "vscode"
    openvscode = "openvscode"
    intellij = "intellij"
    goland = "goland"
    pycharm = "pycharm"
    jupyter = "jupyter"
    none = "none"


class Config:
    """The tool's configuration: contexts, each with providers and options."""

    def __init__(self, env: Env) -> None:
        self.path = Path(env.home) / ".demo-devsy" / "config.json"
        self.context = env.environ.get("DEMO_DEVSY_CONTEXT") or DEFAULT_CONTEXT

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        contexts = data.setdefault("contexts", {})
        ctx = contexts.setdefault(self.context, {})
        ctx.setdefault("providers", [])
        ctx.setdefault("default_provider", None)
        ctx.setdefault("options", {})
        return data

    def current(self, data: dict[str, Any]) -> dict[str, Any]:
        ctx: dict[str, Any] = data["contexts"][self.context]
        return ctx

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)


def context_override(env: Env) -> tuple[str, str] | None:
    """optin's host override: off when the current context has ``TELEMETRY=false``."""
    config = Config(env)
    if not config.path.exists():
        return None
    value = str(config.current(config.load())["options"].get("TELEMETRY", "")).lower()
    if value in _FALSE:
        return ("off", "this context has TELEMETRY=false (demo-devsy context set-options)")
    return None


def source_type(source: str, cwd: str) -> tuple[str, str | None]:
    """``(kind, local path or None)`` of a workspace source, from its shape alone."""
    for prefix in ("git", "image", "local", "container"):
        if source.startswith(prefix + ":"):
            rest = source[len(prefix) + 1 :]
            return prefix, (os.path.join(cwd, rest) if prefix == "local" else None)
    if source.endswith(".git") or source.startswith(("git@", "https://github.com/", "github.com/")):
        return "git", None
    if source.startswith(("/", "./", "../", "~")) or source == ".":
        return "local", os.path.join(cwd, os.path.expanduser(source))
    if "://" not in source and "/" in source and ":" in source.rsplit("/", 1)[-1]:
        return "image", None  # registry/name:tag
    return "unknown", None


def make_telemetry(env: Env, policy: Policy | None = None, **kwargs: Any) -> Telemetry:
    """The tool's ``Telemetry``: the shipped policy, this version, the per-context switch.

    ``policy``: the shipped policy already loaded (a simulation of many users loads it once).
    """
    from optin import Telemetry

    kwargs.setdefault("app_version", __version__)
    return Telemetry(
        policy or str(POLICY), environ=env.environ, override=lambda: context_override(env), **kwargs
    )


def build(telemetry: Telemetry, env: Env) -> typer.Typer:
    """The typer app, instrumented with ``telemetry``."""
    from optin.integrations import not_recorded
    from optin.integrations.typer import instrument

    config = Config(env)
    app = typer.Typer(
        help="A Devsy-like tool: workspaces on any provider. It only pretends to do the work.\n\n"
        "Usage telemetry is off until you say yes; see 'demo-devsy telemetry status'.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    provider_app = typer.Typer(help="Manage providers.", no_args_is_help=True)
    context_app = typer.Typer(help="Manage contexts.", no_args_is_help=True)
    app.add_typer(provider_app, name="provider")
    app.add_typer(context_app, name="context")

    def loaded() -> dict[str, Any]:
        """Load the configuration and set the dimensions every event carries."""
        data = config.load()
        ctx = config.current(data)
        telemetry.dimension("provider", ctx["default_provider"] or "none")
        desktop = env.environ.get("DEMO_DEVSY_UI", "").lower() == "true"
        telemetry.dimension("desktop", "true" if desktop else "false")
        return data

    @app.command()
    def up(
        source: Annotated[str, typer.Argument(help="git URL, image, local path or container.")],
        ide: Annotated[Ide | None, typer.Option(help="The IDE to open.")] = None,
        recreate: Annotated[bool, typer.Option("--recreate", help="Recreate it.")] = False,
    ) -> None:
        """Create (or start) a workspace from SOURCE and open it in an IDE."""
        data = loaded()
        ctx = config.current(data)
        kind, path = source_type(source, env.cwd)
        chosen = ide.value if ide is not None else ctx["options"].get("IDE", "vscode")
        telemetry.dimension("source_type", kind)
        telemetry.dimension("ide", chosen)
        if not ctx["default_provider"]:
            raise NoProviderConfigured("no provider is configured: demo-devsy provider add NAME")
        if path is not None and not os.path.exists(path):
            raise SourceNotFound(f"the local source {source} does not exist")
        nominal = {"git": 8.0, "image": 11.0, "local": 4.0, "container": 3.0}.get(kind, 6.0)
        env.work(nominal * (1.5 if recreate else 1.0))
        typer.echo(f"Workspace from {source} is up on {ctx['default_provider']}; opening {chosen}.")

    @provider_app.command("add")
    def provider_add(
        name: Annotated[str, typer.Argument(help="docker, kubernetes, ssh, ... or your own.")],
        use: Annotated[bool, typer.Option("--use", help="Make it the default.")] = False,
    ) -> None:
        """Add the provider NAME."""
        data = loaded()
        ctx = config.current(data)
        telemetry.dimension("provider", name)
        if name in ctx["providers"]:
            raise ProviderAlreadyExists(f"provider {name!r} already exists")
        env.work(1.5)
        ctx["providers"].append(name)
        if use or not ctx["default_provider"]:
            ctx["default_provider"] = name
        config.save(data)
        typer.echo(f"Added provider {name}.")

    @provider_app.command("delete")
    def provider_delete(name: Annotated[str, typer.Argument(help="The provider.")]) -> None:
        """Delete the provider NAME."""
        data = loaded()
        ctx = config.current(data)
        telemetry.dimension("provider", name)
        if name not in ctx["providers"]:
            raise ProviderNotFound(f"provider {name!r} does not exist")
        env.work(0.5)
        ctx["providers"].remove(name)
        if ctx["default_provider"] == name:
            ctx["default_provider"] = ctx["providers"][0] if ctx["providers"] else None
        config.save(data)
        typer.echo(f"Deleted provider {name}.")

    @provider_app.command("list")
    def provider_list() -> None:
        """List the providers of the current context."""
        ctx = config.current(loaded())
        for name in ctx["providers"]:
            mark = " (default)" if name == ctx["default_provider"] else ""
            typer.echo(f"{name}{mark}")

    @context_app.command("set-options")
    def context_set_options(
        option: Annotated[
            list[str],
            typer.Option("--option", "-o", help="KEY=VALUE, e.g. TELEMETRY=false; repeatable."),
        ],
    ) -> None:
        """Set options of the current context (TELEMETRY=false turns telemetry off here)."""
        data = loaded()
        ctx = config.current(data)
        for item in option:
            key, eq, value = item.partition("=")
            if not eq or not key:
                raise typer.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--option")
            ctx["options"][key.upper()] = value
        config.save(data)
        typer.echo(f"Updated context {config.context}.")

    @app.command()
    @not_recorded
    def version() -> None:
        """Print the version (sends nothing)."""
        typer.echo(__version__)

    instrument(app, telemetry)
    return app


def command_tree() -> typer.Typer:
    """The app for ``optin policy init demo_devsy.cli:command_tree`` (telemetry stays off)."""
    env = Env(environ={})
    return build(make_telemetry(env), env)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``demo-devsy`` console script."""
    env = Env()
    app = build(make_telemetry(env), env)
    app(args=None if argv is None else list(argv), prog_name="demo-devsy")
