"""The OpenAPI 3.1 document served at ``/openapi.json``, written by hand as data.

Hand-written because it is the contract clients are built against (docs/design.md): every status
and body here is one the collector really answers with; ``tests/server/test_openapi.py`` checks
the document is valid and fuzzes the running collector against it with schemathesis.
"""

from __future__ import annotations

from typing import Any

from optin import __version__
from optin.events import MAX_BATCH_EVENTS
from optin.policy import APP_PATTERN
from optin.server.errors import STATUS_OF

__all__ = ["openapi_document"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str, *codes: str, retry: bool = False, rejected: bool = False) -> Any:
    schema: dict[str, Any] = {
        "allOf": [
            _ref("ErrorWithRejected" if rejected else "Error"),
            {"properties": {"error": {"enum": list(codes)}}},
        ]
    }
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if retry:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _html(description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
    if retry:
        response["headers"] = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
    return response


def _dashboard(summary: str, *params: dict[str, Any]) -> dict[str, Any]:
    """The dashboard's pages (served by :mod:`optin.server.dashboard`): HTML, token-protected."""
    return {
        "get": {
            "operationId": "dashboardApp" if params else "dashboard",
            "summary": summary,
            "description": "Server-rendered HTML, no script. When the collector has a dashboard "
            "token, send it as `Authorization: Bearer TOKEN`, or once as `?token=TOKEN` (answered "
            "with a cookie and a redirect to the same page without it).",
            "security": [{}, {"dashboardToken": []}],
            "parameters": [
                *params,
                {
                    "name": "days",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "Window in days (1 to 3660; default 30).",
                },
                {
                    "name": "token",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "The dashboard token, once: exchanged for a cookie.",
                },
            ],
            "responses": {
                "200": _html("The page."),
                "303": {"description": "Token accepted: a cookie, and the page without it."},
                "401": _html("The dashboard token is missing or wrong."),
                "404": {
                    "description": "No data and no policy for this app (HTML), or a path the "
                    "dashboard does not serve (the collector's JSON error, or Starlette's plain "
                    "text inside the dashboard).",
                    "content": {
                        "text/html": {"schema": {"type": "string"}},
                        "application/json": {"schema": _ref("Error")},
                        "text/plain": {"schema": {"type": "string"}},
                    },
                },
                "503": _html("The storage is unavailable.", retry=True),
            },
        }
    }


def openapi_document() -> dict[str, Any]:
    """The document (a fresh dict each call)."""
    app_param = {
        "name": "app",
        "in": "path",
        "required": True,
        "description": "The app id from its policy (e.g. `demo-dfx`).",
        "schema": {"type": "string"},
    }
    not_found = _error("No policy for this app on this collector.", "not_found")
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "optin collector",
            "version": __version__,
            "description": (
                "Receives opt-in usage events from command-line tools, checks each against the "
                "tool's published policy and stores the valid ones. Never stores or logs the "
                "client's IP address or user agent. Every error body is "
                '`{"error": CODE, "message": TEXT}` (plus `rejected` on 422).'
            ),
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "paths": {
            "/v1/events": {
                "post": {
                    "operationId": "postEvents",
                    "summary": "Send a batch of events",
                    "description": (
                        f"One batch, at most {MAX_BATCH_EVENTS} events, at most 1 MiB on the "
                        "wire and 8 MiB decompressed; optionally `Content-Encoding: gzip`. Each "
                        "event is checked against the app's policy (its JSON Schema is at "
                        "`/v1/apps/{app}/policy`); valid events are kept when others are refused. "
                        "On top of the policy the collector refuses an event whose time is more "
                        "than 2 hours in the future or older than the app's retention. The "
                        "answer is sent only once the accepted events are durably stored; an "
                        "event id seen before is a duplicate (with other content: the first "
                        "write wins, and it is counted as a duplicate here). Duplicate keys in "
                        "any JSON object, NaN or Infinity, and lone surrogates make the whole "
                        "body malformed."
                    ),
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": _ref("Batch")}},
                    },
                    "responses": {
                        "200": {
                            "description": "At least one event valid (or all duplicates).",
                            "content": {"application/json": {"schema": _ref("IngestResult")}},
                        },
                        "400": _error("Not JSON, or not a batch object.", "malformed"),
                        "408": _error("The body did not arrive in time.", "timeout"),
                        "413": _error(
                            "Too large: on the wire, decompressed, or too many events.",
                            "too_large",
                        ),
                        "415": _error(
                            "Not application/json, or an unknown Content-Encoding.",
                            "unsupported_media_type",
                        ),
                        "422": _error(
                            "No valid event in the batch, an unknown app, or a policy version "
                            "newer than the collector knows.",
                            "no_valid_events",
                            "unknown_app",
                            "unknown_policy_version",
                            rejected=True,
                        ),
                        "429": _error("This source sends too often.", "rate_limited", retry=True),
                        "503": _error(
                            "Storage unavailable, locked or busy: keep the batch and retry.",
                            "unavailable",
                            retry=True,
                        ),
                        "507": _error(
                            "The collector's disk is full: keep the batch, back off.",
                            "insufficient_storage",
                        ),
                    },
                },
            },
            "/v1/apps/{app}/policy": {
                "get": {
                    "operationId": "getPolicy",
                    "summary": "What this collector accepts for an app",
                    "description": "The policy as data, the JSON Schema of one event, and the "
                    "policy versions the collector knows.",
                    "parameters": [app_param],
                    "responses": {
                        "200": {
                            "description": "The app's newest policy.",
                            "content": {"application/json": {"schema": _ref("PolicyDocument")}},
                        },
                        "404": not_found,
                    },
                }
            },
            "/v1/apps/{app}/notice": {
                "get": {
                    "operationId": "getNotice",
                    "summary": "The public notice (Markdown): what is collected and why",
                    "parameters": [app_param],
                    "responses": {
                        "200": {
                            "description": "The notice.",
                            "content": {"text/markdown": {"schema": {"type": "string"}}},
                        },
                        "404": not_found,
                        "501": _error("The notice renderer is not installed.", "not_implemented"),
                    },
                }
            },
            "/healthz": {
                "get": {
                    "operationId": "health",
                    "summary": "The process is up",
                    "responses": {
                        "200": {
                            "description": "Up.",
                            "content": {"application/json": {"schema": _ref("Status")}},
                        }
                    },
                }
            },
            "/readyz": {
                "get": {
                    "operationId": "ready",
                    "summary": "The storage answers",
                    "responses": {
                        "200": {
                            "description": "Ready to accept events.",
                            "content": {"application/json": {"schema": _ref("Status")}},
                        },
                        "503": _error("The storage does not answer.", "unavailable", retry=True),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus metrics of this worker process",
                    "responses": {
                        "200": {
                            "description": "Prometheus text exposition format 0.0.4.",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/dashboard/": _dashboard("The apps this collector has data or a policy for."),
            "/dashboard/{app}": _dashboard(
                "Every figure for one app over the last `days` days.", app_param
            ),
            "/openapi.json": {
                "get": {
                    "operationId": "openapi",
                    "summary": "This document",
                    "responses": {
                        "200": {
                            "description": "OpenAPI 3.1.",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {
                "dashboardToken": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "The token given to `optin serve --dashboard-token`.",
                }
            },
            "headers": {
                "RetryAfter": {
                    "description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 1},
                }
            },
            "schemas": {
                "Batch": {
                    "type": "object",
                    "required": ["app", "policy_version", "events"],
                    "additionalProperties": False,
                    "properties": {
                        "app": {"type": "string", "pattern": APP_PATTERN},
                        "policy_version": {"type": "integer", "minimum": 1},
                        "events": {
                            "type": "array",
                            "maxItems": MAX_BATCH_EVENTS,
                            "items": {
                                "type": "object",
                                "description": "One event; its exact schema depends on the "
                                "app's policy: see GET /v1/apps/{app}/policy.",
                            },
                        },
                    },
                },
                "IngestResult": {
                    "type": "object",
                    "required": ["accepted", "duplicates", "rejected"],
                    "additionalProperties": False,
                    "properties": {
                        "accepted": {"type": "integer", "minimum": 0},
                        "duplicates": {"type": "integer", "minimum": 0},
                        "rejected": {"type": "array", "items": _ref("Rejected")},
                    },
                },
                "Rejected": {
                    "type": "object",
                    "required": ["index", "reason"],
                    "additionalProperties": False,
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "reason": {"type": "string"},
                    },
                },
                "Error": {
                    "type": "object",
                    "required": ["error", "message"],
                    "properties": {
                        "error": {"type": "string", "enum": sorted(STATUS_OF)},
                        "message": {"type": "string"},
                        "rejected": {"type": "array", "items": _ref("Rejected")},
                    },
                    "additionalProperties": False,
                },
                "ErrorWithRejected": {
                    "allOf": [_ref("Error")],
                    "required": ["rejected"],
                },
                "Status": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string"}},
                },
                "PolicyDocument": {
                    "type": "object",
                    "required": ["policy", "schema", "versions"],
                    "properties": {
                        "policy": {
                            "type": "object",
                            "required": ["app", "version", "commands"],
                            "description": "The policy file as data (see the policy format).",
                        },
                        "schema": {
                            "type": "object",
                            "description": "JSON Schema (draft 2020-12) of one event.",
                        },
                        "versions": {"type": "array", "items": {"type": "integer"}},
                    },
                },
            },
        },
    }
