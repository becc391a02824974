"""demo-dfx: a DFX-like command-line tool that simulates its work, instrumented with optin."""

__version__ = "0.14.2"
