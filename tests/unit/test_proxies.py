"""Who a request came from behind reverse proxies (server/gateway/proxies.py)."""

from __future__ import annotations

import pytest

from server.gateway.proxies import TrustedProxies, parse_network

PROXIES = TrustedProxies(["10.0.0.0/8", "192.168.1.5", "fd00::/8"])


def test_without_trusted_proxies_the_header_is_ignored() -> None:
    assert TrustedProxies().client_ip("10.0.0.1", "203.0.113.7") == "10.0.0.1"


def test_a_client_that_is_no_proxy_cannot_name_another_address() -> None:
    assert PROXIES.client_ip("198.51.100.2", "203.0.113.7") == "198.51.100.2"


def test_a_trusted_proxy_names_the_client() -> None:
    assert PROXIES.client_ip("192.168.1.5", "203.0.113.7") == "203.0.113.7"
    assert PROXIES.client_ip("192.168.1.5", None) == "192.168.1.5"
    assert PROXIES.client_ip("192.168.1.5", "") == "192.168.1.5"


def test_what_the_client_wrote_left_of_the_proxies_is_not_believed() -> None:
    # The client sent "1.1.1.1" itself; the edge proxy appended its real address, and an
    # inner proxy appended the edge proxy's.
    header = "1.1.1.1, 203.0.113.7, 10.2.0.1"
    assert PROXIES.client_ip("10.0.0.1", header) == "203.0.113.7"


def test_garbage_stops_the_walk_at_the_last_proxy_believed() -> None:
    assert PROXIES.client_ip("10.0.0.1", "203.0.113.7, unknown") == "10.0.0.1"
    assert PROXIES.client_ip("10.0.0.1", "nonsense, 10.0.0.9") == "10.0.0.9"


def test_when_every_hop_is_a_proxy_the_farthest_one_is_the_client() -> None:
    assert PROXIES.client_ip("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"


def test_ipv6_and_ipv4_seen_through_an_ipv6_socket() -> None:
    assert PROXIES.client_ip("fd00::1", "2001:db8::7") == "2001:db8::7"
    assert PROXIES.client_ip("::ffff:10.0.0.1", " 203.0.113.7 ") == "203.0.113.7"
    assert PROXIES.client_ip("::ffff:198.51.100.2", "203.0.113.7") == "::ffff:198.51.100.2"


@pytest.mark.parametrize("text", ["nonsense", "10.0.0.0/33", "", "10.0.0.1, 10.0.0.2"])
def test_a_bad_network_says_what_it_got(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address or network"):
        parse_network(text)
