"""Who a request came from when Parta sits behind reverse proxies (TLS ends there).

Behind a proxy every request comes from the proxy's address, and the per-address sign-in
limits would count a whole district as one client. A proxy the operator trusts
(``--trusted-proxy``, an address or a network) appends the address it got the request from
to ``X-Forwarded-For``; the client is the rightmost address in that list that is not a
trusted proxy. Everything left of it was written by the client and could say anything.
Requests from anyone else are taken at their TCP peer address, whatever they send.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

__all__ = ["TrustedProxies", "parse_network"]

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_network(text: str) -> _Network:
    """``10.0.0.5`` or ``10.0.0.0/8`` (IPv6 alike); ``ValueError`` says what is wrong."""
    try:
        return ipaddress.ip_network(text.strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or network: {text!r}") from None


def _address(text: str) -> _Address | None:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    # An IPv4 client seen through an IPv6 socket: count it as the IPv4 address it is.
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class TrustedProxies:
    __slots__ = ("_networks",)

    def __init__(self, networks: Iterable[str] = ()) -> None:
        self._networks = tuple(parse_network(n) for n in networks)

    def _trusted(self, address: _Address) -> bool:
        return any(address in network for network in self._networks)

    def client_ip(self, peer: str, forwarded_for: str | None) -> str:
        """The client's address, from the TCP peer and the ``X-Forwarded-For`` header."""
        if not self._networks or not forwarded_for:
            return peer
        hop = _address(peer)
        if hop is None or not self._trusted(hop):
            return peer
        for entry in reversed(forwarded_for.split(",")):
            address = _address(entry)
            if address is None:
                break  # not an address: nothing from here leftwards can be believed
            hop = address
            if not self._trusted(address):
                break
        # Every entry was a trusted proxy, or the next one was garbage: the last proxy
        # we could believe is as close to the client as we know.
        return str(hop)
