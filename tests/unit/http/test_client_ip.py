"""Which address a per-IP limit counts: X-Forwarded-For only from trusted proxies."""

from __future__ import annotations

import pytest

from service.http.client_ip import TrustedProxies

PROXIES = TrustedProxies(["10.0.0.0/8", "192.168.1.1", "fd00::/8"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "client"),
    [
        pytest.param("203.0.113.9", [], "203.0.113.9", id="no header: the peer"),
        pytest.param("203.0.113.9", [b"1.2.3.4"], "203.0.113.9", id="untrusted peer: ignored"),
        pytest.param("10.1.2.3", [b"1.2.3.4"], "1.2.3.4", id="trusted peer: its client"),
        pytest.param(
            "10.1.2.3", [b"6.6.6.6, 1.2.3.4"], "1.2.3.4", id="forged left part is not believed"
        ),
        pytest.param(
            "10.1.2.3",
            [b"6.6.6.6, 1.2.3.4, 192.168.1.1"],
            "1.2.3.4",
            id="right-most untrusted across a chain of proxies",
        ),
        pytest.param(
            "10.1.2.3", [b"6.6.6.6", b"1.2.3.4, 10.9.9.9"], "1.2.3.4", id="several headers"
        ),
        pytest.param("10.1.2.3", [b"10.2.2.2, 10.3.3.3"], "10.2.2.2", id="all trusted: left-most"),
        pytest.param("10.1.2.3", [b"1.2.3.4, bogus"], "10.1.2.3", id="garbage: the peer"),
        pytest.param("10.1.2.3", [b"1.2.3.4, "], "1.2.3.4", id="empty entries skipped"),
        pytest.param("fd00::1", [b"2001:db8::7"], "2001:db8::7", id="IPv6"),
        pytest.param("unknown", [b"1.2.3.4"], "unknown", id="no peer address"),
    ],
)
def test_the_client_address(peer: str, forwarded_for: list[bytes], client: str) -> None:
    assert PROXIES.client(peer, forwarded_for) == client


def test_no_proxies_trusts_nobody() -> None:
    nobody = TrustedProxies([])
    assert not nobody
    assert nobody.client("10.1.2.3", [b"1.2.3.4"]) == "10.1.2.3"
