"""`optin publish`: every window's tables as CSV and JSON, a datapackage.json that describes them
all, small cells suppressed (with and without differential-privacy noise), and nothing published
that did not come from the policy or the rollups."""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.server.helpers import ThreadServer, batch
from tests.usage_data import APP, POLICY, RARE_VERSION, events_for, fill

from optin.analytics.queries import day_of, iso
from optin.analytics.tables import build_tables
from optin.cli import main as optin_main
from optin.events import ARCHES, OSES
from optin.policy import OTHER, UNKNOWN_COMMAND, load
from optin.publish import publish, windows
from optin.server.app import create_app
from optin.storage import load_policies, open_storage

TODAY = day_of(dt.date(2026, 11, 23))
MIN_COUNT = 10
TYPES = {"string", "integer", "number", "date", "yearmonth"}
IP = re.compile(r"(?<![\d.])\d{1,3}(\.\d{1,3}){3}(?![\d.])|[0-9a-f]{1,4}(:[0-9a-f]{0,4}){4,7}")


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'optin.db'}"
    fill(url, TODAY)
    return url


def _publish(db_url: str, out: Path, epsilon: float | None = None) -> dict[str, Any]:
    with open_storage(db_url) as db:
        path = publish(db, load_policies(POLICY), out, MIN_COUNT, epsilon, today=TODAY)
    package: dict[str, Any] = json.loads(path.read_text())
    return package


@pytest.fixture(scope="module")
def site(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("site")
    yield out, _publish(db_url, out)


@pytest.fixture(scope="module")
def noisy_site(
    db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Path, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("noisy")
    yield out, _publish(db_url, out, epsilon=1.0)


def _tabular(package: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in package["resources"] if r.get("profile") == "tabular-data-resource"]


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with path.open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def _cell(value: str, kind: str) -> Any:
    """Parse one CSV cell by its Frictionless type; raises if it does not fit."""
    if value == "":
        return None
    if kind == "integer":
        assert re.fullmatch(r"-?\d+", value), value
        return int(value)
    if kind == "number":
        return float(value)
    if kind == "date":
        return dt.date.fromisoformat(value).isoformat()
    if kind == "yearmonth":
        assert re.fullmatch(r"\d{4}-\d{2}", value), value
        return value
    return value


def _count_fields(resource: dict[str, Any]) -> list[str]:
    return [
        f["name"]
        for f in resource["schema"]["fields"]
        if f["type"] == "integer" and f["name"] != "bucket"
    ]


# --- windows --------------------------------------------------------------------------------


def test_windows_are_rolling_and_calendar_quarters() -> None:
    first = day_of(dt.date(2026, 2, 10))
    found = {w.name: (iso(w.first), iso(w.last), w.title) for w in windows(TODAY, first)}
    assert found["last-30-days"][:2] == ("2026-10-25", "2026-11-23")
    assert found["last-365-days"][0] == "2025-11-24"
    assert found["2026-q1"][:2] == ("2026-01-01", "2026-03-31")
    assert found["2026-q3"][:2] == ("2026-07-01", "2026-09-30")
    assert found["2026-q4"] == ("2026-10-01", "2026-11-23", "2026 Q4 (to date)")
    assert [n for n in found if "-q" in n] == ["2026-q1", "2026-q2", "2026-q3", "2026-q4"]
    assert [w.name for w in windows(TODAY, None)] == [
        "last-30-days",
        "last-90-days",
        "last-365-days",
    ]


# --- files ----------------------------------------------------------------------------------


def test_every_window_has_every_table_as_csv_and_json(site: tuple[Path, dict[str, Any]]) -> None:
    out, package = site
    # 100 days of data ending 2026-11-23: Q3 (from mid-August) and Q4.
    expected_windows = {"last-30-days", "last-90-days", "last-365-days", "2026-q3", "2026-q4"}
    app_dir = out / APP
    assert {p.name for p in app_dir.iterdir() if p.is_dir()} == expected_windows
    tables = {
        "active_daily", "active_monthly", "commands", "daily_failures", "duration_histogram",
        "durations", "errors", "options", "option_values", "dimensions", "platforms",
        "versions", "events", "event_properties",
    }  # fmt: skip
    for window in expected_windows:
        files = {p.name for p in (app_dir / window).iterdir()}
        assert files == {f"{t}.{ext}" for t in tables for ext in ("csv", "json")}, window
    for name in ("policy.toml", "policy.json", "notice.md"):
        assert (app_dir / name).is_file()
    assert (app_dir / "policy.toml").read_text() == POLICY.read_text()
    assert json.loads((app_dir / "policy.json").read_text())["app"] == APP
    assert (app_dir / "notice.md").read_text().startswith("# What sample-cli collects")
    assert package["optin"]["version"] == __import__("optin").__version__
    index = (out / "index.html").read_text()
    assert "optin " + package["optin"]["version"] in index


def test_csv_and_json_hold_the_same_rows(site: tuple[Path, dict[str, Any]]) -> None:
    out, package = site
    by_path = {r["path"]: r for r in _tabular(package)}
    for path, resource in by_path.items():
        if not path.endswith(".csv"):
            continue
        types = {f["name"]: f["type"] for f in resource["schema"]["fields"]}
        header, rows = _read_csv(out / path)
        from_csv = [
            {h: _cell(v, types[h]) for h, v in zip(header, row, strict=True)} for row in rows
        ]
        from_json = json.loads((out / path.replace(".csv", ".json")).read_text())
        assert from_csv == from_json, path


def test_the_datapackage_lists_every_file_and_types_every_column(
    site: tuple[Path, dict[str, Any]],
) -> None:
    out, package = site
    assert package["profile"] == "tabular-data-package"
    assert "below 10" in package["description"]
    assert "No differential-privacy noise" in package["description"]
    listed = [r["path"] for r in package["resources"]]
    on_disk = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert sorted(listed) == [p for p in on_disk if p != "datapackage.json"]
    names = [r["name"] for r in package["resources"]]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9._-]+", n) for n in names)
    for resource in _tabular(package):
        fields = resource["schema"]["fields"]
        assert fields and all(f["type"] in TYPES and f["description"] for f in fields)
        field_names = [f["name"] for f in fields]
        if resource["format"] == "csv":
            header, rows = _read_csv(out / resource["path"])
            assert header == field_names, resource["path"]
            for row in rows:
                for value, f in zip(row, fields, strict=True):
                    _cell(value, f["type"])
        else:
            for row in json.loads((out / resource["path"]).read_text()):
                assert list(row) == field_names, resource["path"]
        meta = resource["optin"]
        assert meta["app"] == APP and meta["mechanism"]


def _assert_suppressed(out: Path, package: dict[str, Any]) -> int:
    """Every count in every table is empty or at least MIN_COUNT; returns how many were shown."""
    shown = 0
    for resource in _tabular(package):
        if resource["format"] != "json":
            continue
        counts = _count_fields(resource)
        for row in json.loads((out / resource["path"]).read_text()):
            for name in counts:
                assert row[name] is None or row[name] >= MIN_COUNT, (resource["path"], row)
                shown += row[name] is not None
            for f in resource["schema"]["fields"]:
                if f["name"].endswith("_rate"):
                    num = {"failure_rate": "failures", "slow_rate": "slow"}.get(
                        f["name"], "recovered"
                    )
                    if row[num] is None:
                        assert row[f["name"]] is None, (resource["path"], row)
                    assert row[f["name"]] is None or 0 <= row[f["name"]] <= 1, row
    return shown


def test_no_count_below_the_threshold_is_published(site: tuple[Path, dict[str, Any]]) -> None:
    out, package = site
    assert _assert_suppressed(out, package) > 100
    options = json.loads((out / APP / "last-30-days" / "options.json").read_text())
    # Three runs used --yes: the option is listed (it comes from the policy) with no count.
    assert {"command": "canister.install", "option": "yes", "uses": None} in options
    assert all(r["command"] != UNKNOWN_COMMAND or r["runs"] is None for r in _json(out, "commands"))
    for path in out.rglob("*"):
        if path.is_file():
            assert RARE_VERSION not in path.read_text(), path


def _json(out: Path, table: str, window: str = "last-30-days") -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads((out / APP / window / f"{table}.json").read_text())
    return rows


def test_exact_counts_match_the_rollups(site: tuple[Path, dict[str, Any]], db_url: str) -> None:
    out, _ = site
    events = events_for(TODAY)
    first = TODAY - 29
    in_window = [e for e in events if e["time"] // 86400 >= first]
    dau = sum(1 for e in in_window if e["kind"] == "active" and e["period"] == "day")
    assert sum(r["dau"] for r in _json(out, "active_daily")) == dau
    runs = sum(1 for e in in_window if e.get("command") == "deploy")
    assert next(r for r in _json(out, "commands") if r["command"] == "deploy")["runs"] == runs


def test_epsilon_adds_noise_and_suppression_still_holds(
    site: tuple[Path, dict[str, Any]],
    noisy_site: tuple[Path, dict[str, Any]],
    db_url: str,
    tmp_path: Path,
) -> None:
    exact_out, _ = site
    out, package = noisy_site
    assert _assert_suppressed(out, package) > 100
    assert "epsilon = 1" in package["description"]
    assert package["optin"]["epsilon"] == 1.0
    for resource in _tabular(package):
        mechanism = resource["optin"]["mechanism"]
        assert "OpenDP" in mechanism or mechanism.startswith("derived"), mechanism
    exact = [r["dau"] for r in _json(exact_out, "active_daily", "last-90-days")]
    noisy = [r["dau"] for r in _json(out, "active_daily", "last-90-days")]
    assert len(exact) == len(noisy) == 90
    assert exact != noisy
    # Noise, not a bias: most days stay within a few of the exact count (scale 1 at epsilon 1).
    close = sum(1 for a, b in zip(exact, noisy, strict=True) if a and b and abs(a - b) <= 5)
    assert close >= 75
    again = _publish(db_url, tmp_path / "again", epsilon=1.0)
    assert again["optin"]["epsilon"] == 1.0
    assert _json(tmp_path / "again", "active_daily", "last-90-days") != _json(
        out, "active_daily", "last-90-days"
    )
    for path in out.rglob("*"):
        if path.is_file():
            assert RARE_VERSION not in path.read_text(), path


def test_stated_sensitivities_bound_one_event(tmp_path: Path) -> None:
    """Removing any one event changes each table's counts by at most its stated sensitivity."""
    policy = load(POLICY)
    first = TODAY - 29
    events = [e for e in events_for(TODAY, users=6) if e["time"] // 86400 >= first]
    commands = [e for e in events if e["kind"] == "command"]
    chosen = commands[:3] + [e for e in commands if e["outcome"] == "failure"][:3]
    chosen += [e for e in events if e["kind"] == "event"][:2]
    chosen += [e for e in events if e["kind"] == "active" and e["period"] == "month"][:2]
    chosen += [e for e in events if e["kind"] == "active" and e["period"] == "day"][:2]
    full = f"sqlite:///{tmp_path / 'full.db'}"
    with open_storage(full) as db:
        db.store(APP, events)
        base = build_tables(db, policy, first, TODAY)
    for n, event in enumerate(chosen):
        url = f"sqlite:///{tmp_path / f'minus{n}.db'}"
        with open_storage(url) as db:
            db.store(APP, [e for e in events if e is not event])
            tables = build_tables(db, policy, first, TODAY)
        for before, after in zip(base, tables, strict=True):
            cells = {}
            for table, sign in ((before, 1), (after, -1)):
                keys = [f.name for f in table.fields if not f.count and f.rate is None]
                for row in table.rows:
                    for c in table.count_fields:
                        key = (*(row[k] for k in keys), c)
                        cells[key] = cells.get(key, 0) + sign * row[c]
            assert sum(abs(v) for v in cells.values()) <= before.sensitivity, (before.name, event)


def test_nothing_published_comes_from_outside_the_policy(tmp_path: Path) -> None:
    """Events with canaries go through a real collector: refused, and absent from the site."""
    url = f"sqlite:///{tmp_path / 'optin.db'}"
    policy = load(POLICY)
    good = events_for(TODAY, users=20)
    today = max(e["time"] for e in good) // 86400
    canaries = ["203.0.113.77", "canary-7f3a", "/home/alice/secret", "alice@example.org"]
    bad = [{**good[0], "id": f"{i:032x}", "command": c} for i, c in enumerate(canaries)] + [
        {**good[1], "id": f"{99:032x}", "app_version": "1.0+canary-7f3a", "extra": canaries[0]}
    ]
    with ThreadServer(create_app(POLICY, url, rate_limit=0)) as server:
        headers = {"x-forwarded-for": canaries[0], "user-agent": canaries[1]}
        with httpx.Client(base_url=server.url, headers=headers, timeout=30) as client:
            for start in range(0, len(good), 1000):
                sent = client.post("/v1/events", json=batch(good[start : start + 1000]))
                assert sent.status_code == 200, sent.text
            refused = client.post("/v1/events", json=batch(bad))
            assert refused.status_code == 422
    out = tmp_path / "site"
    with open_storage(url) as db:
        publish(db, {APP: policy}, out, MIN_COUNT, 0.5, today=today)
    allowed = {
        *policy.commands, UNKNOWN_COMMAND, OTHER, *policy.errors, *policy.dimensions,
        *policy.events, *OSES, *ARCHES, "1.2.3", "1.3.0", "3.12", "0", "1", "true", "false",
        "app_version", "python", "os", "arch", "ci", "interactive",
    }  # fmt: skip
    for c in policy.commands.values():
        for o in c.options.values():
            allowed |= {o.name, *(o.values or ())}
    for d in policy.dimensions.values():
        allowed |= set(d.values)
    for e in policy.events.values():
        for p in e.properties.values():
            allowed |= {p.name, *p.values, *map(str, p.buckets)}
    package = json.loads((out / "datapackage.json").read_text())
    for resource in _tabular(package):
        if resource["format"] != "csv":
            continue
        text = (out / resource["path"]).read_text()
        assert not IP.search(text), resource["path"]
        strings = [f["name"] for f in resource["schema"]["fields"] if f["type"] == "string"]
        header, rows = _read_csv(out / resource["path"])
        for row in rows:
            for name, value in zip(header, row, strict=True):
                if name in strings:
                    assert value in allowed, (resource["path"], name, value)
    policy_text = POLICY.read_text()
    for path in out.rglob("*"):
        if path.is_file():
            text = path.read_text()
            for canary in canaries:
                assert canary not in text, (path, canary)
            for match in IP.finditer(text):
                assert match.group(0) in policy_text, (path, match.group(0))


def test_the_index_page_is_self_contained(site: tuple[Path, dict[str, Any]]) -> None:
    out, _ = site
    html = (out / "index.html").read_text()
    assert html.count("<svg") >= 7
    assert 'data-chart="sample-cli-active"' in html and "canister.install" in html
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert 'href="sample-cli/last-30-days/commands.csv"' in html


def test_optin_publish_command(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "site"
    argv = ["publish", "--db", db_url, "--policies", str(POLICY), "--out", str(out)]
    assert optin_main([*argv, "--min-count", "20", "--epsilon", "2"]) == 0
    assert "index.html" in capsys.readouterr().out
    package = json.loads((out / "datapackage.json").read_text())
    assert package["optin"]["min_count"] == 20 and package["optin"]["epsilon"] == 2.0
    assert optin_main([*argv, "--epsilon", "-1"]) == 1
    assert "--epsilon must be a positive number" in capsys.readouterr().err
    assert optin_main([*argv, "--min-count", "0"]) == 1
