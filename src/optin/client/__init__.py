"""The client core: everything that runs inside a user's CLI process (standard library only).

Nothing here is imported by ``import optin``; ``optin.Telemetry`` loads :mod:`.telemetry` on
first use, and network modules are imported only by the uploader (:mod:`.upload`,
:mod:`.transport`).
"""
