"""An aiohttp connector whose connections go only to addresses the guard allows.

The host is resolved once per connection by `GuardedResolver`, every answer is checked against
the `AddressPolicy`, and aiohttp connects to the checked address itself: there is no second
lookup a DNS server could answer differently (DNS rebinding). For https aiohttp still sends the
URL's host name as SNI and in the Host header, so certificates are verified against the name.
IP-literal URLs never reach a resolver in aiohttp; `handler.inputs.fetch` checks those itself.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

from .netguard import AddressPolicy, IPAddress, parse_ip

__all__ = ["AddressRefused", "GuardedResolver", "Lookup", "guarded_connector", "system_lookup"]

# (host, port) -> every address the name has; tests inject their own to play a rebinding DNS.
Lookup = Callable[[str, int], Awaitable[list[IPAddress]]]


class AddressRefused(Exception):
    """The host only resolves to addresses the policy refuses (not an OSError: aiohttp lets it through)."""

    def __init__(self, host: str, address: IPAddress, reason: str) -> None:
        super().__init__(f"{host} resolves to {address}, {reason}")
        self.host = host
        self.address = address
        self.reason = reason


async def system_lookup(host: str, port: int) -> list[IPAddress]:
    """The operating system's answer for ``host`` (getaddrinfo), every address once, in order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    seen: list[IPAddress] = []
    for _family, _type, _proto, _name, sockaddr in infos:
        address = parse_ip(str(sockaddr[0]))
        if address is not None and address not in seen:
            seen.append(address)
    return seen


class GuardedResolver(AbstractResolver):
    """Resolves a name once and returns only the addresses the policy allows."""

    def __init__(self, policy: AddressPolicy, lookup: Lookup = system_lookup) -> None:
        self._policy = policy
        self._lookup = lookup

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        addresses = await self._lookup(host, port)
        if family in (socket.AF_INET, socket.AF_INET6):
            wanted = 4 if family == socket.AF_INET else 6
            addresses = [address for address in addresses if address.version == wanted]
        if not addresses:
            raise OSError(f"{host} has no address")  # aiohttp reports it as a DNS failure
        results: list[ResolveResult] = []
        refused: AddressRefused | None = None
        for address in addresses:
            reason = self._policy.refusal(address, host=host)
            if reason is not None:
                refused = refused or AddressRefused(host, address, reason)
                continue
            results.append(
                ResolveResult(
                    hostname=host,
                    host=str(address),
                    port=port,
                    family=socket.AF_INET if address.version == 4 else socket.AF_INET6,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not results:
            assert refused is not None
            raise refused
        return results

    async def close(self) -> None:
        return None


def guarded_connector(
    policy: AddressPolicy,
    *,
    lookup: Lookup = system_lookup,
    ssl_context: ssl.SSLContext | None = None,
    limit: int = 8,
) -> aiohttp.TCPConnector:
    """A connector for input downloads: guarded resolver, no DNS cache (each hop is re-checked)."""
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, lookup),
        use_dns_cache=False,
        ssl=ssl_context if ssl_context is not None else True,
        limit=limit,
    )
