"""Webhook URLs: what is accepted, and where a delivery may connect (SSRF guard).

The service POSTs to URLs its clients choose, from inside the operator's network, so by default a
delivery may only reach public addresses:

- When a webhook is created: http or https only; a host, no credentials, no fragment; a literal IP
  address must be public; `localhost`, `*.localhost`, `*.local`, `*.internal`, `*.localdomain`
  and single-label names (resolved through search domains, usually to internal hosts) are refused.
- At every delivery: the name is resolved and *every* address it resolves to must be public; the
  request then goes to the vetted address (Host header and TLS SNI/certificate check keep the
  name), so a DNS answer that changes between check and connect (rebinding) cannot redirect it.
  Redirects are never followed; proxies from the environment are ignored.

"Public" means `ipaddress`'s `is_global` and not multicast; IPv4-mapped, 6to4 and NAT64 IPv6
addresses are judged by the IPv4 address they carry. WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true lifts
the address rules (an intranet receiver, or tests with a loopback receiver); the scheme and shape
rules stay.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(ValueError):
    """The URL, or the address it leads to, is not allowed. The message says why."""


class ResolveError(Exception):
    """The host name did not resolve (now): worth retrying later."""


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address):
        inner = _embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not address.is_multicast


def _literal_ip(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        return None


@dataclass(frozen=True)
class Destination:
    """A validated URL's parts."""

    url: str
    scheme: str
    host: str  # lower-case, IDNA (ASCII) form, IPv6 without brackets
    port: int


def _host(parts: SplitResult) -> str:
    host = parts.hostname or ""
    if not host:
        raise UnsafeURL("must include a host")
    try:
        ascii_host = host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError:
        raise UnsafeURL("has a host name that is not valid") from None
    return ascii_host.lower().rstrip(".")


def parse_url(url: str, *, allow_private: bool) -> Destination:
    """The URL's destination if it may be used as a webhook URL; UnsafeURL otherwise."""
    if url != url.strip() or any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise UnsafeURL("must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeURL(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL("must be an http:// or https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeURL("must not include credentials (user:password@)")
    if parts.fragment or url.endswith("#"):
        raise UnsafeURL("must not include a fragment (#…)")
    host = _host(parts)
    if port == 0:
        raise UnsafeURL("must not use port 0")
    if not allow_private:
        literal = _literal_ip(host)
        if literal is not None:
            if not is_public(literal):
                raise UnsafeURL(
                    f"points to a non-public address ({literal}); this service only delivers to "
                    "public addresses"
                )
        elif host == "localhost" or host.endswith(_LOCAL_SUFFIXES) or "." not in host:
            raise UnsafeURL(
                f"points to a local host name ({host}); use a public, fully qualified name"
            )
    return Destination(
        url=url, scheme=scheme, host=host, port=port or (443 if scheme == "https" else 80)
    )


async def resolve(destination: Destination, *, allow_private: bool) -> list[IPAddress]:
    """The addresses to connect to, in the resolver's order. Every address the host resolves to
    must be allowed (a name with one private address among public ones is refused)."""
    literal = _literal_ip(destination.host)
    if literal is not None:
        addresses: list[IPAddress] = [literal]
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(
                destination.host, destination.port, type=socket.SOCK_STREAM
            )
        except (OSError, UnicodeError) as exc:
            raise ResolveError(f"Cannot resolve {destination.host}: {exc}") from None
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos)
        )
        if not addresses:
            raise ResolveError(f"{destination.host} resolves to no address")
    if not allow_private:
        for address in addresses:
            if not is_public(address):
                raise UnsafeURL(
                    f"{destination.host} resolves to a non-public address ({address}); refused "
                    "(see WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"
                )
    return addresses
