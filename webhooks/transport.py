"""Sending one webhook request safely: the SSRF guard and the HTTP call (urllib3).

The host is resolved once, EVERY address it resolves to is checked, and the connection is made to a checked
address, never to the name again (so a DNS answer that changes between check and connect, "DNS rebinding",
cannot reach an internal address). The Host header, TLS SNI and certificate verification still use the
host name. Redirects are never followed; timeouts are separate for connecting and for reading.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import certifi
import urllib3
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# Refused whatever ipaddress says about them (is_global covers private, loopback, link-local, reserved…).
ALWAYS_REFUSED: tuple[Network, ...] = tuple(ipaddress.ip_network(n) for n in (
    "0.0.0.0/8", "100.64.0.0/10", "169.254.0.0/16", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4",
    "fd00:ec2::254/128", "fc00::/7", "fe80::/10", "ff00::/8", "::/128", "::1/128",
))
METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


class UnsafeDestination(Exception):
    """The URL may not be called: its text, its host name or one of its addresses is refused."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    target: str  # path and query
    addresses: tuple[str, ...]

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass
class HttpResult:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body_excerpt: str = ""
    duration_ms: int = 0
    address: str = ""
    error: str = ""


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (IPv4-mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if any(ip in net for net in NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def _allowlist() -> tuple[set[str], list[Network]]:
    hosts: set[str] = set()
    networks: list[Network] = []
    for entry in settings.HEPTORA_WEBHOOK_ALLOWLIST:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            hosts.add(entry.lower().rstrip("."))
    return hosts, networks


def address_refusal(ip: IPAddress) -> str | None:
    """Why ``ip`` may not be connected to, or None when it is a public unicast address."""
    if ip in METADATA:
        return "a cloud metadata address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        reason = address_refusal(embedded)
        return f"an IPv6 form of {embedded}, {reason}" if reason else None
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_multicast:
        return "a multicast address"
    if ip.is_unspecified:
        return "an unspecified address"
    if ip.is_private or any(ip.version == net.version and ip in net for net in ALWAYS_REFUSED):
        return "a private or reserved address"
    if ip.is_reserved or not ip.is_global:
        return "a reserved address"
    return None


def destination_check(url: str, *, require_https: bool | None = None) -> Destination:
    """Parse, resolve and check ``url``. Raises :class:`UnsafeDestination` with a sentence a person can act on."""
    if require_https is None:
        require_https = settings.HEPTORA_WEBHOOK_REQUIRE_HTTPS
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestination(f"The URL is not valid ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeDestination("Use an https:// URL.")
    if scheme == "http" and require_https:
        raise UnsafeDestination("Use an https:// URL: plain http is accepted only in development (DEBUG).")
    if parts.username is not None or parts.password is not None:
        raise UnsafeDestination("The URL must not contain a user name or password.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeDestination("The URL has no host.")
    port = port or (443 if scheme == "https" else 80)
    target = parts.path or "/"
    if parts.query:
        target += f"?{parts.query}"
    allowed_hosts, allowed_networks = _allowlist()
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError, ValueError):  # ValueError: a NUL in the name
        raise UnsafeDestination(f"The host '{host}' could not be resolved.") from None
    addresses: list[str] = []
    for info in infos:
        text = str(info[4][0]).split("%")[0]
        ip = ipaddress.ip_address(text)
        if host.lower() not in allowed_hosts and not any(ip.version == n.version and ip in n for n in allowed_networks):
            reason = address_refusal(ip)
            if reason:
                shown = host if host == text else f"'{host}' resolves to {text}, which"
                raise UnsafeDestination(
                    f"{shown} is {reason}. Webhooks are never sent to loopback, private, link-local, multicast, "
                    "reserved or cloud metadata addresses (an operator may allow one with HEPTORA_WEBHOOK_ALLOWLIST)."
                )
        if text not in addresses:
            addresses.append(text)
    if not addresses:
        raise UnsafeDestination(f"The host '{host}' could not be resolved.")
    return Destination(scheme, host, port, target, tuple(addresses))


def post(url: str, body: bytes, headers: dict[str, str]) -> HttpResult:
    """POST ``body`` to ``url`` once, on a checked address. Never raises for network trouble: see ``error``."""
    started = time.monotonic()
    result = HttpResult()
    try:
        destination = destination_check(url)
    except UnsafeDestination as exc:
        result.error = f"Refused: {exc}"
        return result
    timeout = urllib3.Timeout(connect=settings.HEPTORA_WEBHOOK_CONNECT_TIMEOUT,
                              read=settings.HEPTORA_WEBHOOK_READ_TIMEOUT)
    cap = settings.HEPTORA_WEBHOOK_RESPONSE_EXCERPT
    for address in destination.addresses:
        result.address = address
        pool = _pool(destination, address, timeout)
        try:
            response = pool.urlopen(
                "POST", destination.target, body=body, headers={**headers, "Host": destination.host_header},
                redirect=False, retries=False, preload_content=False, assert_same_host=False,
            )
        except urllib3.exceptions.NewConnectionError as exc:
            result.error = f"Could not connect to {address}: {_reason(exc)}"
            pool.close()
            continue  # try the host's next checked address
        except urllib3.exceptions.HTTPError as exc:
            result.error = _describe(exc)
            pool.close()
            break
        try:
            result.status = response.status
            result.headers = {k.lower(): v for k, v in response.headers.items()}
            result.body_excerpt = response.read(cap, decode_content=True).decode("utf-8", "replace")[:cap]
            result.error = ""
        except urllib3.exceptions.HTTPError as exc:
            result.error = f"Reading the response failed: {_describe(exc)}"
        finally:
            response.close()
            pool.close()
        break
    result.duration_ms = int((time.monotonic() - started) * 1000)
    return result


def _pool(destination: Destination, address: str, timeout: urllib3.Timeout) -> urllib3.HTTPConnectionPool:
    if destination.scheme == "https":
        return urllib3.HTTPSConnectionPool(
            address, destination.port, timeout=timeout, maxsize=1, retries=False,
            server_hostname=destination.host, assert_hostname=destination.host,
            cert_reqs="CERT_REQUIRED", ca_certs=settings.HEPTORA_WEBHOOK_CA_BUNDLE or certifi.where(),
        )
    return urllib3.HTTPConnectionPool(address, destination.port, timeout=timeout, maxsize=1, retries=False)


def _reason(exc: Exception) -> str:
    text = str(exc)
    return text.split(": ", 1)[-1] if ": " in text else text or type(exc).__name__


def _describe(exc: urllib3.exceptions.HTTPError) -> str:
    if isinstance(exc, urllib3.exceptions.ConnectTimeoutError):
        return f"Timed out connecting (after {settings.HEPTORA_WEBHOOK_CONNECT_TIMEOUT} s)."
    if isinstance(exc, urllib3.exceptions.ReadTimeoutError):
        return f"Timed out waiting for the response (after {settings.HEPTORA_WEBHOOK_READ_TIMEOUT} s)."
    if isinstance(exc, urllib3.exceptions.SSLError):
        return f"TLS failed: {_reason(exc)}"
    return f"{type(exc).__name__}: {_reason(exc)}"
