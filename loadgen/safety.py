"""Where load may be sent: loopback only, unless the caller allows a host by name.

A load generator pointed at the wrong address is a denial-of-service tool, so every part of the
suite that sends load asks :func:`check_host` first. Names are resolved before deciding: a name
that resolves to any address outside 127.0.0.0/8 and ::1 is refused, whatever it is called.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable

LOOPBACK_NAMES = "127.0.0.0/8, ::1, localhost"


def resolve_addresses(host: str) -> list[str]:
    """Every address ``host`` resolves to (raises OSError when it does not resolve)."""
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def is_loopback_address(address: str) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (``::ffff:127.0.0.1``)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


is_loopback = is_loopback_address
"""The older name of :func:`is_loopback_address`."""


def _bare(host: str) -> str:
    host = host.strip().lower()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host


def check_host(
    host: str,
    allowed: Iterable[str] = (),
    resolve: Callable[[str], Iterable[str]] = resolve_addresses,
) -> str | None:
    """None when load may be sent to ``host``, else the reason it may not (one line).

    ``allowed`` names hosts (or addresses) the caller explicitly permits, compared without case
    and brackets; a host named there is not even resolved. Every other host must resolve only to
    loopback addresses or to addresses listed in ``allowed``. ``resolve`` is the name lookup
    (replaceable in tests).
    """
    name = _bare(host)
    if not name:
        return "no host given"
    allow = {_bare(item) for item in allowed}
    if name in allow:
        return None
    try:
        addresses = list(resolve(name))
    except OSError as exc:
        return f"cannot resolve host {host!r} ({exc}); load is only sent to loopback hosts"
    if not addresses:
        return f"host {host!r} resolves to no address"
    outside = [
        address
        for address in addresses
        if not is_loopback_address(address) and address.lower() not in allow
    ]
    if outside:
        return (
            f"refusing to send load to {host!r}: it resolves to {', '.join(outside)}, "
            f"outside loopback ({LOOPBACK_NAMES}); allow it explicitly (--allow-host {name}, "
            f'or allow_hosts = ["{name}"] under [network] in bench.toml)'
        )
    return None
