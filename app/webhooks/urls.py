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

"Public" is decided by an allowlist of what is globally reachable, not a list of what is not (see
`is_public`): IPv4 addresses that `ipaddress` calls global, less the exclusions listed there;
IPv6 addresses only in 2000::/3, less the blocks the IANA IPv6 Special-Purpose Address Registry
marks not globally reachable; the forms that carry an IPv4 address (IPv4-mapped, NAT64
64:ff9b::/96, 6to4, Teredo) are judged by the IPv4 address(es) they carry. Every other IPv6
form (IPv4-compatible ::a.b.c.d, SIIT ::ffff:0:a.b.c.d, local-use NAT64 64:ff9b:1::/48,
site-local fec0::/10, unique-local, link-local, multicast, ...) is refused.
WEBHOOK_ALLOW_PRIVATE_ADDRESSES=true lifts the address rules (an intranet receiver, or tests with
a loopback receiver); the scheme and shape rules stay.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa")


class UnsafeURL(ValueError):
    """The URL, or the address it leads to, is not allowed. The message says why."""


class ResolveError(Exception):
    """The host name did not resolve (now): worth retrying later."""


# IPv4: `is_global` (the IANA IPv4 special-purpose registry, as the running Python knows it), less
# these, listed so the answer does not depend on the Python release:
_IPV4_EXCLUDED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network"
        "10.0.0.0/8",  # private (RFC 1918)
        "100.64.0.0/10",  # carrier-grade NAT (shared address space)
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata
        "172.16.0.0/12",  # private
        # IETF protocol assignments: not globally reachable, but for two anycast addresses
        # (192.0.0.9 PCP, 192.0.0.10 TURN, allowed below); Python 3.11 calls the /24 past
        # 192.0.0.7 global
        "192.0.0.0/24",
        "192.0.2.0/24",  # documentation
        # 6to4 relay anycast, deprecated (RFC 7526): a relay forwards into 6to4, i.e. anywhere;
        # `is_global` calls it global
        "192.88.99.0/24",
        "192.168.0.0/16",  # private
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # documentation
        "203.0.113.0/24",  # documentation
        # multicast 224/4 and reserved 240/4 (with 255.255.255.255, the limited broadcast): not
        # unicast; `is_global` calls most of 224/4 global
        "224.0.0.0/3",
    )
)
_IPV4_ANYCAST = (ipaddress.IPv4Address("192.0.0.9"), ipaddress.IPv4Address("192.0.0.10"))

# IPv6: 2000::/3 only (global unicast). Everything outside it is refused, whatever it is: ::/8
# (loopback, unspecified, IPv4-compatible and SIIT forms), 64:ff9b:1::/48 (local-use NAT64),
# 100::/64 (discard), fc00::/7, fe80::/10, fec0::/10, ff00::/8, ... The forms that carry an IPv4
# address are judged by it. Inside 2000::/3, the registry's blocks that are not globally
# reachable are refused, but for the globally reachable assignments inside 2001::/23.
_IPV6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV6_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")  # a dual-stack socket's view of IPv4
_IPV6_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # the well-known prefix: globally reachable
_IPV6_TEREDO = ipaddress.IPv6Network("2001::/32")
_IPV6_6TO4 = ipaddress.IPv6Network("2002::/16")
_IPV6_REACHABLE_ASSIGNMENTS = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001:1::1/128",  # Port Control Protocol anycast
        "2001:1::2/128",  # TURN anycast
        "2001:1::3/128",  # DNS-SD service registration protocol anycast
        "2001:3::/32",  # AMT
        "2001:4:112::/48",  # AS112-v6
        "2001:20::/28",  # ORCHIDv2
        "2001:30::/28",  # drone remote ID protocol entity tags
    )
)
_IPV6_NOT_REACHABLE = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments (benchmarking 2001:2::/48, ORCHID, ...)
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation (RFC 9637)
        "5f00::/16",  # segment routing (SRv6) SIDs
    )
)


def _public_ipv4(address: ipaddress.IPv4Address) -> bool:
    if address in _IPV4_ANYCAST:
        return True
    return address.is_global and not any(address in net for net in _IPV4_EXCLUDED)


def _last_32_bits(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address:
    return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)


def _public_ipv6(address: ipaddress.IPv6Address) -> bool:
    if address in _IPV6_MAPPED or address in _IPV6_NAT64:
        return _public_ipv4(_last_32_bits(address))
    if address not in _IPV6_GLOBAL_UNICAST:
        return False
    if address in _IPV6_6TO4:
        inner = address.sixtofour
        return inner is not None and _public_ipv4(inner)
    if address in _IPV6_TEREDO:
        # a relay sends it over IPv4, to the server and the (obfuscated) client address it carries
        if address.teredo is None:
            return False
        server, client = address.teredo
        return _public_ipv4(server) and _public_ipv4(client)
    if any(address in net for net in _IPV6_REACHABLE_ASSIGNMENTS):
        return True
    return not any(address in net for net in _IPV6_NOT_REACHABLE)


def is_public(address: IPAddress) -> bool:
    """Whether a delivery may connect to `address`: globally reachable unicast (module doc)."""
    if isinstance(address, ipaddress.IPv6Address):
        return _public_ipv6(address)
    return _public_ipv4(address)


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
