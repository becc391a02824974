"""Every kind of bad policy gives a clear error naming the file, the key and what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from optin import policy

GOOD = (Path(__file__).parent / "data" / "policy.toml").read_text()
HEAD = """
app = "tool"
version = 1
endpoint = "https://t.example.org"
purpose = "Why."
[commands.run]
purpose = "Running."
"""


def problems(text: str) -> list[str]:
    with pytest.raises(policy.PolicyError) as info:
        policy.loads(text, "t.toml")
    return info.value.problems


def test_the_sample_policy_loads_with_every_field() -> None:
    p = policy.loads(GOOD, "policy.toml")
    assert p.app == "sample-cli" and p.version == 2 and p.env_prefix == "SAMPLE_CLI"
    assert p.commands["canister.install"].options["mode"].values == (
        "install",
        "reinstall",
        "upgrade",
        "auto",
    )
    assert p.commands["canister.install"].options["yes"].values is None
    assert p.commands["deploy"].positional_count
    assert p.dimensions["network"].coerce("mainnet") == "other"
    assert p.events["start_finish"].properties["seconds"].coerce(42) == 30
    assert p.settings.retention_days == 90 and p.settings.slow_threshold_seconds == 10


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("colour = 'red'", "t.toml: commands.run.colour: unknown key"),
        (
            "[settings]\nretention_days = -1",
            "t.toml: settings.retention_days: -1 must be a positive",
        ),
        ("[settings]\nupload_every = 3", "t.toml: settings.upload_every: unknown key"),
        (
            "[commands.run.options.mode]\npurpose='x'\nvalues = []",
            "t.toml: commands.run.options.mode.values: is empty",
        ),
        (
            "[commands.run.options.mode]\npurpose='x'\nvalues = ['a', 'a']",
            "t.toml: commands.run.options.mode.values: duplicate value 'a'",
        ),
        (
            "[commands.run.options.mode]\npurpose='x'\nvalues = ['two words']",
            "'two words' is not a closed-list value",
        ),
        ("[commands.run.options.mode]\npurpose='x'\nvalues = ['a', 'other']", "'other' is implied"),
        (
            "[commands.run.options.mode]\nvalues = ['a']",
            "t.toml: commands.run.options.mode.purpose: is required",
        ),
        (
            "[commands.run.options.mode]\npurpose='x'\ncolour = 1",
            "commands.run.options.mode.colour: unknown key",
        ),
        ("[commands.Run]\npurpose = 'x'", "t.toml: commands.Run: duplicate name"),
        ("[commands.'bad path!']\npurpose = 'x'", "is not a valid name"),
        (
            "[events.e.properties.msg]\npurpose = 'x'\ntype = 'string'",
            "t.toml: events.e.properties.msg.type: 'string' is not one of enum, bool, bucket "
            "(free text is never collected)",
        ),
        (
            "[events.e]\npurpose = 'x'\n[events.e.properties.n]\npurpose = 'x'\ntype = 'bucket'\n"
            "buckets = [10, 5]",
            "events.e.properties.n.buckets: must be a non-empty, strictly",
        ),
        (
            "[events.e]\npurpose = 'x'\n[events.e.properties.n]\npurpose = 'x'\ntype = 'enum'",
            "events.e.properties.n.values: must be a list of values, not nothing",
        ),
        (
            "[dimensions.network]\npurpose = 'x'\nvalues = 'ic'",
            "t.toml: dimensions.network.values: must be a list of values, not str",
        ),
        ("[errors]\n'has space' = 'x'", "t.toml: errors.has space: 'has space' is not a valid"),
        ("[errors]\nother = 'x'", "t.toml: errors.other: 'other' is implied"),
        ("[errors]\nE = 3", "t.toml: errors.E: must be a purpose string or a table, not int"),
    ],
)
def test_bad_policies_name_the_key_and_the_problem(extra: str, expected: str) -> None:
    found = problems(HEAD + "\n" + extra)
    assert any(expected in p for p in found), found
    assert all(p.startswith("t.toml: ") for p in found)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (HEAD.replace('"tool"', '"My Tool"'), "t.toml: app: 'My Tool' is not a valid app id"),
        (HEAD.replace("version = 1", "version = 0"), "t.toml: version: 0 is not a policy version"),
        (HEAD.replace("version = 1", "version = true"), "t.toml: version: True is not"),
        (HEAD.replace("https://t.example.org", "ftp://x"), "t.toml: endpoint: 'ftp://x' is not"),
        (HEAD.replace('purpose = "Why."', ""), "t.toml: purpose: is required"),
        (HEAD.split("[commands.run]")[0], "t.toml: commands: no command is declared"),
        (HEAD + "[commands.run]\npurpose = 'again'", "t.toml: not valid TOML"),
        ("app = ", "t.toml: not valid TOML"),
        (HEAD.split("[commands.run]")[0] + "commands = 3", "t.toml: commands: must be a table"),
        ("colour = 1\n" + HEAD, "t.toml: colour: unknown key (allowed: app, commands"),
    ],
)
def test_bad_top_level(text: str, expected: str) -> None:
    found = problems(text)
    assert any(expected in p for p in found), found


def test_every_problem_is_reported_at_once() -> None:
    found = problems(HEAD + "colour = 1\n[dimensions.d]\npurpose = 'x'\nvalues = []\n")
    assert len(found) == 2


def test_an_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(policy.PolicyError, match=r"missing\.toml: cannot read the policy"):
        policy.load(tmp_path / "missing.toml")


def test_plain_data_round_trips() -> None:
    p = policy.loads(GOOD, "policy.toml")
    again = policy.from_data(policy.to_data(p), "policy.toml")
    assert again == p
    assert policy.to_data(again) == policy.to_data(p)


def test_cached_load_is_the_same_policy_and_notices_edits(tmp_path: Path) -> None:
    src = tmp_path / "policy.toml"
    src.write_text(GOOD)
    cache = tmp_path / "cache.bin"
    first = policy.load_cached(str(src), str(cache))
    assert cache.exists()
    assert policy.load_cached(str(src), str(cache)) == first
    src.write_text(GOOD.replace("version = 2", "version = 3"))
    assert policy.load_cached(str(src), str(cache)).version == 3
    cache.write_bytes(b"\x00garbage")
    assert policy.load_cached(str(src), str(cache)).version == 3


def test_a_bad_policy_is_never_served_from_the_cache(tmp_path: Path) -> None:
    src = tmp_path / "policy.toml"
    src.write_text(GOOD)
    cache = tmp_path / "cache.bin"
    policy.load_cached(str(src), str(cache))
    src.write_text(GOOD + "\ncolour = 1\n")
    with pytest.raises(policy.PolicyError):
        policy.load_cached(str(src), str(cache))


@pytest.mark.parametrize(
    ("text", "app"),
    [
        ('app = "demo-dfx"\nversion = 1\n', "demo-dfx"),
        ("# comment\napp='demo-dfx'  # trailing\n", "demo-dfx"),
        ('[commands.x]\napp = "demo-dfx"\n', None),
        ('app = "Not Valid"\n', None),
        ('name = "x"\n', None),
    ],
)
def test_peek_app_reads_only_the_simple_form(tmp_path: Path, text: str, app: str | None) -> None:
    path = tmp_path / "p.toml"
    path.write_text(text)
    assert policy.peek_app(str(path)) == app


def test_importing_the_policy_module_is_cheap() -> None:
    import subprocess
    import sys

    code = "import sys, optin.policy, optin.events; print(sorted(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = done.stdout
    for heavy in ("'re'", "'tomllib'", "'dataclasses'", "'typing'", "'pathlib'", "'json'"):
        assert heavy not in loaded, heavy
