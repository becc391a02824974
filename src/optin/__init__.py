"""optin: privacy-first, opt-in usage telemetry for command-line tools.

``import optin`` is cheap by design: it runs inside every command a user types, so the client
is loaded only when first used (PEP 562 ``__getattr__``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["Telemetry", "__version__"]

if TYPE_CHECKING:
    from optin.client.telemetry import Telemetry


def __getattr__(name: str) -> Any:
    if name == "Telemetry":
        from optin.client.telemetry import Telemetry

        return Telemetry
    raise AttributeError(f"module 'optin' has no attribute {name!r}")
