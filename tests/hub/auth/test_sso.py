"""The single sign-on header: honoured only from the configured proxy addresses."""

from __future__ import annotations

import pytest

from sentinel.hub.auth.sso import SsoHeader, from_trusted, parse_proxies


def test_the_header_is_honoured_from_a_trusted_proxy_only() -> None:
    """From 10.0.0.5 (in 10.0.0.0/29) the name counts; from anywhere else it is ignored and flagged."""
    sso = SsoHeader("X-Remote-User", ["10.0.0.0/29", "127.0.0.1"])
    assert sso.asserted("10.0.0.5", {"x-remote-user": "Olga"}) == ("olga", False)
    assert sso.asserted("127.0.0.1", {"x-remote-user": "olga"}) == ("olga", False)
    assert sso.asserted("10.0.0.9", {"x-remote-user": "olga"}) == (None, True)
    assert sso.asserted("10.0.0.5", {}) == (None, False)


def test_without_a_header_name_nothing_is_asserted() -> None:
    """sso_header = "" (the default) disables single sign-on entirely."""
    sso = SsoHeader("", ["127.0.0.1"])
    assert not sso.enabled
    assert sso.asserted("127.0.0.1", {"x-remote-user": "olga"}) == (None, False)


def test_ipv4_mapped_ipv6_peers_match_their_ipv4_proxy() -> None:
    """A dual-stack socket reports ::ffff:10.0.0.5 for 10.0.0.5."""
    assert from_trusted("::ffff:10.0.0.5", parse_proxies(["10.0.0.5"]))
    assert not from_trusted("not an address", parse_proxies(["10.0.0.5"]))


def test_a_bad_proxy_entry_is_a_clear_error() -> None:
    """Configuration mistakes name the entry."""
    with pytest.raises(ValueError, match=r"'10\.0\.0\.300'"):
        parse_proxies(["10.0.0.300"])
