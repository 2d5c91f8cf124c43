"""Outbound webhook URLs: which ones the portal may call, and the address it connects to.

A customer's URL could name our own network (SSRF), so it is resolved first and refused if any
address is internal, unless the host or address is in the WEBHOOK_ALLOWLIST setting.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class RefusedURL(ValueError):
    """The URL will never be called as it stands (scheme, host or address); retrying cannot help."""


class UnresolvableHost(OSError):
    """The host name did not resolve now; DNS failures are often temporary, so the caller retries."""


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `address`, but speak to `hostname` (Host header, TLS name)."""

    scheme: str
    hostname: str
    port: int
    address: str
    path: str  # path and query, as written

    @property
    def pinned_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.scheme}://{host}:{self.port}{self.path}"

    @property
    def host_header(self) -> str:
        name = f"[{self.hostname}]" if ":" in self.hostname else self.hostname
        return name if self.port == DEFAULT_PORTS[self.scheme] else f"{name}:{self.port}"


def _is_internal(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    # ::ffff:10.0.0.1 reaches 10.0.0.1: judge the IPv4 address it carries.
    mapped = getattr(ip, "ipv4_mapped", None)
    if mapped is not None:
        ip = mapped
    return (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def _allowed_networks(allowlist: list[str]) -> tuple[set[str], list]:
    names, networks = set(), []
    for entry in allowlist:
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            names.add(entry.lower().rstrip("."))
    return names, networks


def check_url(url: str, allowlist: list[str] | tuple[str, ...] = ()) -> Target:
    """Resolve `url` and return where to connect; raise RefusedURL or UnresolvableHost.

    Refused: schemes other than http(s); plain http unless allowlisted; any resolved address that
    is private, loopback, link-local, multicast, reserved or unspecified unless allowlisted. Every
    address must pass, since the HTTP client could otherwise pick the internal one.
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
    try:
        infos = socket.getaddrinfo(hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHost(f"cannot resolve {hostname}: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0].split("%")[0] for info in infos))
    if not addresses:
        raise UnresolvableHost(f"{hostname} has no address")

    names, networks = _allowed_networks(list(allowlist))
    host_allowed = hostname in names

    def address_allowed(address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return host_allowed or any(ip.version == net.version and ip in net for net in networks)

    for address in addresses:
        if _is_internal(ipaddress.ip_address(address)) and not address_allowed(address):
            raise RefusedURL(
                f"webhook host {hostname} resolves to {address}, a private or reserved address; "
                "add it to WEBHOOK_ALLOWLIST if it is meant to be called"
            )
    if scheme != "https" and not all(address_allowed(a) for a in addresses):
        raise RefusedURL(f"webhook URL must use https:// ({hostname} is not in WEBHOOK_ALLOWLIST)")
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    return Target(scheme=scheme, hostname=hostname, port=port, address=addresses[0], path=path)
