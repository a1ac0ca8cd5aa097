"""The client address a per-IP rate limit counts: the peer, or X-Forwarded-For behind proxies.

Behind a router every request comes from the router's address, so per-IP limits would make
all clients one. `trusted_proxies` names the proxies whose `X-Forwarded-For` is believed. A
request from one of them is counted against the right-most address of the header that is not
itself a trusted proxy: each trusted hop appended the address it saw, and anything to the left
of the first untrusted one was written by the client and may be forged. Headers from any other
peer are ignored. When every listed address is trusted, the left-most is the client; a value
that is not an address ends the walk at the hop that appended it (the peer is used instead).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(text: str) -> Address | None:
    try:
        return ipaddress.ip_address(text.strip())
    except ValueError:
        return None


class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed (`trusted_proxies`)."""

    __slots__ = ("networks",)

    def __init__(self, entries: Iterable[str]) -> None:
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry.strip(), strict=False) for entry in entries
        )

    def __bool__(self) -> bool:
        return bool(self.networks)

    def as_strings(self) -> list[str]:
        """The networks in CIDR form (uvicorn's `forwarded_allow_ips`)."""
        return [str(network) for network in self.networks]

    def trusts(self, address: Address) -> bool:
        return any(address in network for network in self.networks)

    def client(self, peer: str, forwarded_for: Sequence[bytes]) -> str:
        """The client's address for a request from `peer` with these X-Forwarded-For values."""
        peer_address = _address(peer)
        if peer_address is None or not forwarded_for or not self.trusts(peer_address):
            return peer
        hops = [
            hop
            for value in forwarded_for
            for hop in value.decode("latin-1").split(",")
            if hop.strip()
        ]
        client = peer_address
        for hop in reversed(hops):
            address = _address(hop)
            if address is None:
                return peer  # a trusted hop wrote something that is not an address
            client = address
            if not self.trusts(address):
                break
        return str(client)
