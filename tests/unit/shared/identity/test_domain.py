"""The rules of identity without a database: passwords, emails, API keys, throttling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.identity.domain import (
    InvalidEmailError,
    InvalidNameError,
    ThrottlePolicy,
    UnknownRoleError,
    WeakPasswordError,
    api_key_digest,
    api_key_display_prefix,
    api_key_id,
    check_password_policy,
    clean_name,
    generate_api_key,
    is_api_key_id,
    last_use_is_stale,
    normalize_email,
    parse_role,
)
from shared.principal import Role

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# Passwords, emails, names, roles


def test_a_password_of_twelve_characters_is_long_enough():
    check_password_policy("abcdefghijkl")


@pytest.mark.parametrize("password", ["", "short", "elevenchars"])
def test_a_password_shorter_than_twelve_characters_is_refused_with_the_rule(password):
    with pytest.raises(WeakPasswordError, match="at least 12 characters"):
        check_password_policy(password)


def test_a_password_longer_than_anyone_types_is_refused():
    with pytest.raises(WeakPasswordError, match="at most"):
        check_password_policy("x" * 1025)


def test_a_password_with_a_lone_surrogate_is_refused():
    with pytest.raises(WeakPasswordError):
        check_password_policy("correct horse \udc80 battery")


def test_emails_are_stored_in_lower_case_without_blanks():
    assert normalize_email("  Jane.Doe@Example.COM ") == "jane.doe@example.com"


@pytest.mark.parametrize(
    "email", ["", "jane", "@example.com", "jane@", "ja ne@example.com", "jane@ex\x00.com"]
)
def test_what_is_not_an_email_is_refused(email):
    with pytest.raises(InvalidEmailError):
        normalize_email(email)


def test_blank_names_become_none_and_long_ones_are_refused():
    assert clean_name("  Zoë Müller ", "name") == "Zoë Müller"
    assert clean_name("   ", "name") is None
    assert clean_name(None, "name") is None
    with pytest.raises(InvalidNameError):
        clean_name("x" * 201, "name")


@pytest.mark.parametrize("role", list(Role))
def test_every_role_parses_from_its_name(role):
    assert parse_role(role.value) is role


def test_an_unknown_role_is_refused_naming_the_choices():
    with pytest.raises(UnknownRoleError, match="agent, manager, admin"):
        parse_role("boss")


@pytest.mark.parametrize(
    ("held", "required", "allowed"),
    [
        (Role.AGENT, Role.AGENT, True),
        (Role.AGENT, Role.MANAGER, False),
        (Role.MANAGER, Role.AGENT, True),
        (Role.MANAGER, Role.ADMIN, False),
        (Role.ADMIN, Role.MANAGER, True),
    ],
)
def test_a_role_allows_what_the_roles_below_it_may(held, required, allowed):
    assert held.allows(required) is allowed


# API keys


def test_an_api_key_is_clk_an_id_and_a_secret_of_at_least_32_bytes():
    key = generate_api_key()
    prefix, key_id, secret = key[:4], key[4:20], key[21:]
    assert prefix == "clk_" and key[20] == "_"
    assert is_api_key_id(key_id)
    assert len(secret) >= 43  # 32 bytes in url-safe base64
    assert api_key_id(key) == key_id


def test_two_keys_differ():
    assert generate_api_key() != generate_api_key()


@pytest.mark.parametrize(
    "text",
    [
        "",
        "clk_",
        "clk_0123456789abcdef",
        "clk_0123456789abcdef_short",
        "clk_0123456789ABCDEF_" + "a" * 43,
        "xyz_0123456789abcdef_" + "a" * 43,
        "clk_0123456789abcdef_" + "a" * 43 + "\n",
        "clk_0123456789abcdef_" + "a" * 42 + "+",
    ],
)
def test_a_malformed_key_has_no_id(text):
    assert api_key_id(text) is None


def test_the_digest_is_sha256_hex_and_the_prefix_is_short_and_public():
    key = generate_api_key()
    assert len(api_key_digest(key)) == 64 and key not in api_key_digest(key)
    prefix = api_key_display_prefix(key)
    assert key.startswith(prefix) and len(prefix) == 12


def test_last_use_is_written_at_most_once_a_minute():
    assert last_use_is_stale(None, T0)
    assert not last_use_is_stale(T0, T0 + timedelta(seconds=59))
    assert last_use_is_stale(T0, T0 + timedelta(seconds=60))


# Throttling


def test_four_failures_do_not_lock_out():
    failures = [T0 + minutes(i) for i in range(4)]
    assert ThrottlePolicy().locked_until(failures, T0 + minutes(4)) is None


def test_five_failures_within_fifteen_minutes_lock_out_for_fifteen_minutes_from_the_fifth():
    failures = [T0 + minutes(3 * i) for i in range(5)]  # the fifth at 12 minutes
    policy = ThrottlePolicy()
    assert policy.locked_until(failures, T0 + minutes(13)) == T0 + minutes(27)
    assert policy.locked_until(failures, T0 + minutes(26.9)) == T0 + minutes(27)
    assert policy.locked_until(failures, T0 + minutes(27)) is None


def test_five_failures_spread_over_more_than_fifteen_minutes_do_not_lock_out():
    failures = [T0 + minutes(4 * i) for i in range(5)]  # 16 minutes from first to fifth
    assert ThrottlePolicy().locked_until(failures, T0 + minutes(17)) is None


def test_the_order_in_which_failures_are_given_does_not_matter():
    failures = [T0 + minutes(i) for i in (4, 0, 3, 1, 2)]
    assert ThrottlePolicy().locked_until(failures, T0 + minutes(5)) == T0 + minutes(19)


def test_a_later_burst_locks_out_until_its_own_end():
    failures = [T0 + minutes(i) for i in range(5)] + [T0 + minutes(20 + i) for i in range(5)]
    assert ThrottlePolicy().locked_until(failures, T0 + minutes(25)) == T0 + minutes(39)


def test_failures_older_than_the_horizon_cannot_lock_out():
    policy = ThrottlePolicy()
    assert policy.horizon == minutes(30)
    failures = [T0 + minutes(i) for i in range(5)]
    assert policy.locked_until(failures, T0 + minutes(4) + policy.lockout) is None


def test_the_policy_takes_other_numbers():
    policy = ThrottlePolicy(max_failures=2, window=minutes(1), lockout=minutes(5))
    assert policy.locked_until([T0, T0 + minutes(0.5)], T0 + minutes(1)) == T0 + minutes(5.5)
