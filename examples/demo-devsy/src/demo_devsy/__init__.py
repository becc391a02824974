"""demo-devsy: a Devsy-like command-line tool that simulates its work, instrumented with optin."""

__version__ = "0.5.29"
