"""The bank's single sign-on through a trusted reverse proxy.

When `[web] sso_header` is set (e.g. "X-Remote-User"), a request whose TCP peer is one of
`[web] trusted_proxies` (addresses or networks) and carries that header is taken as logged in as
the named user — who must exist in the hub and be enabled; their roles are the hub's. From any
other address the header is ignored (and logged), so a client cannot claim a name by sending it.
The proxy must strip the header from what clients send and set it itself (docs/hub.md).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(entries: Iterable[str]) -> tuple[Network, ...]:
    """The configured proxies as networks (a bare address is a /32 or /128); ValueError if bad."""
    out: list[Network] = []
    for entry in entries:
        try:
            out.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an address or network") from None
    return tuple(out)


def from_trusted(peer: str | None, proxies: tuple[Network, ...]) -> bool:
    """Whether the TCP peer is one of the trusted proxies."""
    if not peer or not proxies:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in net for net in proxies)


class SsoHeader:
    """Reads the asserted user name from a request, if the request may assert one."""

    def __init__(self, header: str, proxies: Iterable[str]) -> None:
        self.header = header.strip().lower()
        self.proxies = parse_proxies(proxies)

    @property
    def enabled(self) -> bool:
        """Whether single sign-on is configured at all."""
        return bool(self.header) and bool(self.proxies)

    def asserted(self, peer: str | None, headers: Mapping[str, str]) -> tuple[str | None, bool]:
        """(the user name the proxy asserts or None, whether an untrusted peer tried to)."""
        if not self.header:
            return None, False
        value = headers.get(self.header)
        if value is None:
            return None, False
        if not from_trusted(peer, self.proxies):
            return None, True
        name = value.strip().lower()
        return (name or None), False
