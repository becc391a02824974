"""demo-cfdev: a PCF-Dev-like command-line tool that simulates its work, instrumented with optin."""

__version__ = "1.2.0"
