"""The notice is rendered from the policy, so it lists every field the policy allows."""

from __future__ import annotations

from pathlib import Path

from optin import notice, policy

POLICY = policy.load(Path(__file__).parent / "data" / "policy.toml")


def test_notice_lists_every_field_of_the_policy_with_its_purpose() -> None:
    text = notice.render(POLICY)
    assert POLICY.purpose in text
    for path, cmd in POLICY.commands.items():
        assert f"`{path}`: {cmd.purpose}" in text
        for name, opt in cmd.options.items():
            assert f"option `{name}`" in text and opt.purpose in text
            for value in opt.values or ():
                assert f"`{value}`" in text
    for name, dim in POLICY.dimensions.items():
        assert f"`{name}`" in text and dim.purpose in text
        assert all(f"`{v}`" in text for v in dim.values)
    for name, ev in POLICY.events.items():
        assert f"`{name}`: {ev.purpose}" in text
        for pname, prop in ev.properties.items():
            assert f"`{pname}`" in text and prop.purpose in text
    for name, purpose in POLICY.errors.items():
        assert f"`{name}`: {purpose}" in text
    assert "the number of positional arguments" in text  # deploy counts them


def test_notice_says_what_is_never_collected_and_how_to_turn_it_off() -> None:
    text = notice.render(POLICY)
    assert "## Never collected" in text
    for item in notice.NEVER_COLLECTED:
        assert item in text
    assert "SAMPLE_CLI_DISABLE_TELEMETRY=true" in text and "DO_NOT_TRACK=1" in text
    assert "Policy version 2" in text and "90 days" in text


def test_notice_changes_when_the_policy_does() -> None:
    src = (Path(__file__).parent / "data" / "policy.toml").read_text()
    changed = policy.loads(src.replace('"upgrade", "auto"', '"upgrade", "auto", "dry-run"'))
    assert "`dry-run`" in notice.render(changed)
    assert "`dry-run`" not in notice.render(POLICY)
