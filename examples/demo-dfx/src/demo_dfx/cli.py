"""demo-dfx: the command line (click), instrumented with optin.

The tool does no real work: it keeps a little state in ``~/.demo-dfx/state.json`` and sleeps
for a few milliseconds. It fails deterministically, so that telemetry has failures to show: a
canister whose name starts with ``missing`` does not exist, local commands need ``start``
first, a transfer of more than 1000 ICP is refused, an identity name can be taken only once.

What telemetry sees is set by ``telemetry.toml`` beside this file; the only telemetry calls in
the tool itself are ``telemetry.dimension("network", ...)`` in each command.

:func:`build` makes the command tree for one ``Telemetry`` and one :class:`~demo_dfx.env.Env`,
so ``scripts/demo.py`` can run many simulated users in one process; :func:`main` is the
console script.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import click

from demo_dfx import __version__
from demo_dfx.env import Env

TYPE_CHECKING = False
if TYPE_CHECKING:
    from optin import Telemetry
    from optin.policy import Policy

#: The policy ships inside the package, beside this module.
POLICY = Path(__file__).with_name("telemetry.toml")
#: ``--network`` values that are not ``ic`` or ``local`` (a URL, say) are recorded as ``other``:
#: the tool passes this placeholder, never the value itself.
CUSTOM_NETWORK = "custom"
MAX_BALANCE_ICP = Decimal(1000)


class DfxError(click.ClickException):
    """An error the tool reports; its class name is the error category telemetry records."""

    exit_code = 255


class CanisterNotFound(DfxError):
    pass


class ReplicaNotRunning(DfxError):
    pass


class InsufficientFunds(DfxError):
    pass


class IdentityAlreadyExists(DfxError):
    pass


class State:
    """The tool's own state (never telemetry's): replica running, canisters, identities."""

    def __init__(self, env: Env) -> None:
        self.path = Path(env.home) / ".demo-dfx" / "state.json"

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            data = {}
        data.setdefault("running", False)
        data.setdefault("canisters", [])
        data.setdefault("identities", ["default"])
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, self.path)


def make_telemetry(env: Env, policy: Policy | None = None, **kwargs: Any) -> Telemetry:
    """The tool's ``Telemetry``: the shipped policy, this version, the environment of ``env``.

    ``policy``: the shipped policy already loaded (a simulation of many users loads it once).
    """
    from optin import Telemetry

    kwargs.setdefault("app_version", __version__)
    return Telemetry(policy or str(POLICY), environ=env.environ, **kwargs)


def build(telemetry: Telemetry, env: Env) -> click.Group:
    """The command tree, instrumented with ``telemetry``."""
    from optin.integrations.click import instrument

    state = State(env)

    def network_dimension(option: str | None) -> str:
        """The network dimension: ``ic``, ``local-project``, ``local-shared``, or other."""
        name = option or env.environ.get("DEMO_DFX_NETWORK") or "local"
        if name == "ic":
            kind = "ic"
        elif name == "local":
            project = os.path.exists(os.path.join(env.cwd, "dfx.json"))
            kind = "local-project" if project else "local-shared"
        else:
            kind = CUSTOM_NETWORK
        telemetry.dimension("network", kind)
        return kind

    def need_replica(kind: str) -> dict[str, Any]:
        data = state.load()
        if kind.startswith("local") and not data["running"]:
            raise ReplicaNotRunning(
                "the local replica is not running; run 'demo-dfx start --background' first"
            )
        return data

    network_option = click.option(
        "--network", metavar="NETWORK", help="ic, local, or the URL of a replica."
    )

    @click.group(context_settings={"help_option_names": ["-h", "--help"]})
    @click.version_option(__version__, prog_name="demo-dfx")
    def cli() -> None:
        """A DFX-like tool: start a replica, create, deploy and install canisters.

        It only pretends to do these things. Usage telemetry is off until you say yes; see
        'demo-dfx telemetry status'.
        """

    @cli.command()
    @click.option("--background", is_flag=True, help="Run the replica in the background.")
    @click.option("--clean", is_flag=True, help="Start from a clean state.")
    def start(background: bool, clean: bool) -> None:
        """Start the local replica."""
        network_dimension(None)
        env.work(4.0 if clean else 2.5)
        data = state.load()
        data["running"] = True
        if clean:
            data["canisters"] = []
        state.save(data)
        click.echo("Replica running" + (" in the background." if background else "."))

    @cli.command()
    def stop() -> None:
        """Stop the local replica."""
        network_dimension(None)
        env.work(0.5)
        data = state.load()
        data["running"] = False
        state.save(data)
        click.echo("Replica stopped.")

    @cli.command()
    @click.argument("canister", required=False)
    @network_option
    def deploy(canister: str | None, network: str | None) -> None:
        """Deploy every canister of the project, or only CANISTER."""
        kind = network_dimension(network)
        data = need_replica(kind)
        if canister is not None and canister.startswith("missing"):
            raise CanisterNotFound(f"cannot find canister {canister!r}")
        env.work(6.0 if canister is None else 3.0)
        if canister is not None and canister not in data["canisters"]:
            data["canisters"].append(canister)
            state.save(data)
        click.echo(f"Deployed {canister or 'all canisters'}.")

    @cli.group()
    def canister() -> None:
        """Manage canisters."""

    @canister.command("create")
    @click.argument("name")
    @network_option
    def canister_create(name: str, network: str | None) -> None:
        """Create the canister NAME."""
        kind = network_dimension(network)
        data = need_replica(kind)
        env.work(1.5)
        if name not in data["canisters"]:
            data["canisters"].append(name)
            state.save(data)
        click.echo(f"Created canister {name}.")

    @canister.command("install")
    @click.argument("name")
    @click.option(
        "--mode",
        type=click.Choice(["install", "reinstall", "upgrade", "auto"]),
        default="auto",
        show_default=True,
        help="How to install the code.",
    )
    @network_option
    def canister_install(name: str, mode: str, network: str | None) -> None:
        """Install code into the canister NAME."""
        kind = network_dimension(network)
        need_replica(kind)
        if name.startswith("missing"):
            raise CanisterNotFound(f"cannot find canister {name!r}")
        env.work(3.0 if mode == "reinstall" else 2.0)
        click.echo(f"Installed code into {name} ({mode}).")

    @cli.group()
    def ledger() -> None:
        """Send ICP."""

    @ledger.command("transfer")
    @click.argument("to")
    @click.option("--icp", metavar="AMOUNT", help="Amount in ICP (e.g. 1.5).")
    @click.option("--e8s", type=int, metavar="AMOUNT", help="Amount in e8s.")
    @click.option("--memo", type=int, required=True, help="A number the receiver sees.")
    @network_option
    def ledger_transfer(
        to: str, icp: str | None, e8s: int | None, memo: int, network: str | None
    ) -> None:
        """Transfer ICP to the account or principal TO."""
        kind = network_dimension(network)
        if (icp is None) == (e8s is None):
            raise click.UsageError("give the amount with exactly one of --icp and --e8s")
        try:
            amount = Decimal(icp) if icp is not None else Decimal(e8s or 0) / 100_000_000
        except InvalidOperation:
            raise click.BadParameter("not a number", param_hint="--icp") from None
        need_replica(kind)
        env.work(1.0)
        if amount > MAX_BALANCE_ICP:
            raise InsufficientFunds(f"the balance is too low to send {amount} ICP to {to}")
        click.echo(f"Transferred {amount} ICP to {to} (memo {memo}).")

    @cli.group()
    def identity() -> None:
        """Manage identities."""

    @identity.command("new")
    @click.argument("name")
    @click.option(
        "--storage-mode",
        type=click.Choice(["keyring", "password-protected", "plaintext"]),
        help="Where the key is kept.",
    )
    def identity_new(name: str, storage_mode: str | None) -> None:
        """Create the identity NAME."""
        network_dimension(None)
        data = state.load()
        if name in data["identities"]:
            raise IdentityAlreadyExists(f"identity {name!r} already exists")
        env.work(0.3)
        data["identities"].append(name)
        state.save(data)
        click.echo(f"Created identity {name}.")

    instrument(cli, telemetry)
    return cli


def command_tree() -> click.Group:
    """The tree for ``optin policy init demo_dfx.cli:command_tree`` (telemetry stays off)."""
    env = Env(environ={})
    return build(make_telemetry(env), env)


def main(argv: Sequence[str] | None = None) -> None:
    """The ``demo-dfx`` console script."""
    env = Env()
    build(make_telemetry(env), env).main(args=argv, prog_name="demo-dfx")
