"""Outbound webhook URLs: which ones the portal may call, and the address it connects to.

A customer's URL could name our own network (SSRF), so it is resolved first and refused if any
address is not globally routable, unless the host or address is in the WEBHOOK_ALLOWLIST setting.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedURL(ValueError):
    """The URL will never be called as it stands (scheme, host or address); retrying cannot help."""


class UnresolvableHost(OSError):
    """The host name did not resolve now; DNS failures are often temporary, so the caller retries."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to one of `addresses`, but speak to `hostname` (Host header, TLS name)."""

    scheme: str
    hostname: str
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, each checked, in DNS order
    path: str  # path and query, as written

    @property
    def address(self) -> str:
        return self.addresses[0]

    def pinned_url(self, address: str | None = None) -> str:
        """The URL with the host replaced by `address` (default: the first one)."""
        address = address or self.address
        host = f"[{address}]" if ":" in address else address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        name = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


# NAT64 (RFC 6052): the well-known prefix only translates, so the IPv4 address it carries is where
# the packets go. The local-use prefix 64:ff9b:1::/48 is not global and is refused as it stands.
NAT64_PREFIX = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> tuple[bool, list[ipaddress.IPv4Address]]:
    """The IPv4 addresses an IPv6 address leads to, and whether the IPv6 address only carries them.

    ::ffff:a.b.c.d and 64:ff9b::a.b.c.d reach a.b.c.d itself; 6to4 (2002::/16) and Teredo
    (2001::/32) are tunnels, so the IPv6 address and the IPv4 addresses in it must all pass.
    """
    if ip.ipv4_mapped is not None:
        return True, [ip.ipv4_mapped]
    if ip in NAT64_PREFIX:
        return True, [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return False, [ip.sixtofour]
    if ip.teredo is not None:
        return False, list(ip.teredo)  # (server, client)
    return False, []


def _not_public(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # is_global leaves out private, loopback, link-local, CGNAT (100.64.0.0/10, home of the
    # 100.100.100.200 metadata service) and the other special-purpose ranges; it lets multicast
    # through, so that is refused separately.
    return not ip.is_global or ip.is_multicast or ip.is_reserved or ip.is_unspecified


def is_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True unless `ip`, and any IPv4 address it carries, is globally routable unicast."""
    if ip.version == 6:
        carrier_only, embedded = _embedded_ipv4(ip)
        if any(_not_public(v4) for v4 in embedded):
            return True
        if carrier_only:
            return False
    return _not_public(ip)


class Allowlist:
    """The WEBHOOK_ALLOWLIST setting: host names, addresses and networks (CIDR) we may call anyway."""

    def __init__(self, entries: list[str] | tuple[str, ...] = ()):
        self.names: set[str] = set()
        self.networks: list = []
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                self.names.add(entry.lower().rstrip("."))

    def permits(self, hostname: str, address: str) -> bool:
        """Whether a host of this name, reached at this address, is listed (by name or network)."""
        if hostname.lower().rstrip(".") in self.names:
            return True
        ip = ipaddress.ip_address(address)
        return any(ip.version == net.version and ip in net for net in self.networks)


def _resolve(hostname: str, port: int | None) -> list[str]:
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {hostname}: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    if not addresses:
        raise UnresolvableHost(f"{hostname} has no address")
    return addresses


def plain_http_allowed(
    hostname: str, allowlist: list[str] | tuple[str, ...], addresses: list[str] | None = None
) -> bool:
    """Whether plain http to this host is allowed: listed by name, or every address in a listed network.

    The one rule for adding a channel and for sending. `addresses` are those the host resolved to;
    without them the host is resolved here, and a name that does not resolve counts only if listed.
    """
    allowed = Allowlist(allowlist)
    hostname = hostname.lower().rstrip(".")
    if hostname in allowed.names:
        return True
    if not allowed.networks:
        return False
    if addresses is None:
        try:
            addresses = _resolve(hostname, None)
        except UnresolvableHost:
            return False
    return bool(addresses) and all(allowed.permits(hostname, a) for a in addresses)


def check_url(url: str, allowlist: list[str] | tuple[str, ...] = ()) -> Target:
    """Resolve `url` and return where to connect; raise RefusedURL or UnresolvableHost.

    Refused: schemes other than http(s); plain http unless allowlisted; any resolved address that
    is not globally routable unicast (private, loopback, link-local, CGNAT, multicast, reserved ...,
    including such an IPv4 address inside an IPv6 one) unless allowlisted. Every address must pass,
    since the sender may connect to any of them.
    """
    parts = urlsplit((url or "").strip())
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise RefusedURL(f"webhook URL scheme {scheme or '(none)'!r} is not allowed; use https://")
    hostname = (parts.hostname or "").lower().rstrip(".")
    if not hostname:
        raise RefusedURL("webhook URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError as exc:
        raise RefusedURL(f"webhook URL has an invalid port: {exc}") from exc
    addresses = _resolve(hostname, port)
    allowed = Allowlist(list(allowlist))
    for address in addresses:
        if is_internal(ipaddress.ip_address(address)) and not allowed.permits(hostname, address):
            raise RefusedURL(
                f"webhook host {hostname} resolves to {address}, a private or reserved address; "
                "add it to WEBHOOK_ALLOWLIST if it is meant to be called"
            )
    if scheme != "https" and not plain_http_allowed(hostname, allowlist, addresses):
        raise RefusedURL(f"webhook URL must use https:// ({hostname} is not in WEBHOOK_ALLOWLIST)")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme=scheme, hostname=hostname, port=port, addresses=tuple(addresses), path=path)


def redacted_url(url: str) -> str:
    """The URL as pages and audit events show it: a user name and password become `***`.

    The real URL, credentials included, is read only when sending.
    """
    try:
        parts = urlsplit(url or "")
    except ValueError:
        return "***" if "@" in (url or "") else url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"***@{host}"))
