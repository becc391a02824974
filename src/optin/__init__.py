"""optin: privacy-first, opt-in usage telemetry for command-line tools.

``import optin`` is cheap by design: it runs inside every command a user types, so nothing is
imported here (not even ``typing``); the client loads on first use (PEP 562 ``__getattr__``).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from optin.client.telemetry import Telemetry

__version__ = "0.1.0"
__all__ = ["Telemetry", "__version__"]


def __getattr__(name: str) -> "type[Telemetry]":
    if name == "Telemetry":
        from optin.client.telemetry import Telemetry

        return Telemetry
    raise AttributeError(f"module 'optin' has no attribute {name!r}")
