"""Which network addresses an input URL may reach. Pure: no I/O, no DNS.

A URL the worker fetches is a door into the worker's network: the cloud host's metadata service
(169.254.169.254, fd00:ec2::254), the endpoint's private services, ComfyUI itself on 127.0.0.1.
`AddressPolicy.refusal` says why an address is off limits, or None when it may be reached.
Addresses hidden inside IPv6 forms (IPv4-mapped ``::ffff:a.b.c.d``, IPv4-compatible ``::a.b.c.d``,
6to4 ``2002:AABB:CCDD::``, NAT64 ``64:ff9b::a.b.c.d``, Teredo) are unwrapped and checked too.

The operator's allow-list (INPUT_URL_ALLOWLIST, parsed in config.py into an `AllowList`) names
hosts and networks that may be reached anyway, e.g. an in-VPC MinIO.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult

__all__ = ["AddressPolicy", "AllowList", "IPAddress", "display_url", "parse_ip"]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Most specific first: the first match names the reason. Cloud metadata services come before the
# wider ranges that contain them so the refusal says what the address really is.
_METADATA = {
    ipaddress.ip_address("169.254.169.254"): "a cloud metadata service (AWS, GCP, Azure, RunPod hosts)",
    ipaddress.ip_address("169.254.170.2"): "a cloud metadata service (AWS ECS task credentials)",
    ipaddress.ip_address("100.100.100.200"): "a cloud metadata service (Alibaba Cloud)",
    ipaddress.ip_address("192.0.0.192"): "a cloud metadata service (Oracle Cloud)",
    ipaddress.ip_address("fd00:ec2::254"): "a cloud metadata service (AWS, IPv6)",
}
_BLOCKED: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/8", "an unspecified address (0.0.0.0/8)"),
        ("127.0.0.0/8", "a loopback address (127.0.0.0/8)"),
        ("10.0.0.0/8", "a private address (10.0.0.0/8)"),
        ("172.16.0.0/12", "a private address (172.16.0.0/12)"),
        ("192.168.0.0/16", "a private address (192.168.0.0/16)"),
        ("100.64.0.0/10", "a carrier-grade NAT address (100.64.0.0/10)"),
        ("169.254.0.0/16", "a link-local address (169.254.0.0/16)"),
        ("224.0.0.0/4", "a multicast address (224.0.0.0/4)"),
        ("240.0.0.0/4", "a reserved address (240.0.0.0/4)"),
        ("192.0.0.0/24", "a reserved address (IETF protocol assignments, 192.0.0.0/24)"),
        ("192.0.2.0/24", "a reserved address (documentation, 192.0.2.0/24)"),
        ("198.51.100.0/24", "a reserved address (documentation, 198.51.100.0/24)"),
        ("203.0.113.0/24", "a reserved address (documentation, 203.0.113.0/24)"),
        ("198.18.0.0/15", "a reserved address (benchmarking, 198.18.0.0/15)"),
        ("192.88.99.0/24", "a reserved address (6to4 relay anycast, 192.88.99.0/24)"),
        ("::/128", "an unspecified address (::)"),
        ("::1/128", "a loopback address (::1)"),
        ("fc00::/7", "a private address (unique local, fc00::/7)"),
        ("fe80::/10", "a link-local address (fe80::/10)"),
        ("fec0::/10", "a private address (site-local, fec0::/10)"),
        ("ff00::/8", "a multicast address (ff00::/8)"),
        ("100::/64", "a reserved address (discard, 100::/64)"),
        ("2001:db8::/32", "a reserved address (documentation, 2001:db8::/32)"),
        ("2001:2::/48", "a reserved address (benchmarking, 2001:2::/48)"),
        ("64:ff9b:1::/48", "a reserved address (local-use NAT64, 64:ff9b:1::/48)"),
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


@dataclass(frozen=True)
class AllowList:
    """Hosts and networks the operator lets input URLs reach although they are not public.

    ``hosts`` are lower-case names; an entry ``*.example.com`` allows every subdomain.
    """

    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    def names_host(self, host: str) -> bool:
        host = host.lower().rstrip(".")
        if host in self.hosts:
            return True
        return any(entry.startswith("*.") and host.endswith(entry[1:]) for entry in self.hosts)

    def names_address(self, address: IPAddress) -> bool:
        unwrapped = _embedded_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
        return any(address in net or (unwrapped is not None and unwrapped in net) for net in self.networks)

    def __bool__(self) -> bool:
        return bool(self.hosts or self.networks)


@dataclass(frozen=True)
class AddressPolicy:
    """The guard's rule: public addresses only, plus what the allow-list names."""

    allow: AllowList = AllowList()

    def refusal(self, address: IPAddress, *, host: str = "") -> str | None:
        """Why ``address`` (reached for ``host``) may not be fetched, or None if it may."""
        if host and self.allow.names_host(host):
            return None
        if self.allow.names_address(address):
            return None
        return blocked_reason(address)


def blocked_reason(address: IPAddress) -> str | None:
    """The class of a non-public address (loopback, private, ...), or None for a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return f"an IPv6 address with a zone ({address})"
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            inner = blocked_reason(embedded)
            if inner:
                return f"{inner}, wrapped in the IPv6 address {address}"
            return None
    if address in _METADATA:
        return _METADATA[address]
    for network, reason in _BLOCKED:
        if address.version == network.version and address in network:
            return reason
    if not address.is_global:
        return f"not a public address ({address})"
    return None


def parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address when it is a literal (``[::1]`` brackets allowed), else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def display_url(parts: SplitResult) -> str:
    """The URL as messages and logs show it: no user info, no query string, no fragment."""
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 transition form carries, if it is one."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]  # the client; the server part is a public relay
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None
