"""Network safety: load goes only to loopback unless the host is explicitly allowed."""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable


def is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def check_host(host: str, allowed: Iterable[str] = ()) -> str | None:
    """None when load may go to ``host``; else the reason it may not.

    A name is resolved first: a name that resolves to any non-loopback address is refused
    unless the name itself (or that address) is in ``allowed``.
    """
    host = host.strip().strip("[]")
    allow = {a.strip().strip("[]").lower() for a in allowed}
    if not host:
        return "no host given"
    if host.lower() in allow:
        return None
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except socket.gaierror as exc:
        return f"cannot resolve {host!r}: {exc.strerror}"
    addresses = sorted({str(info[4][0]) for info in infos})
    outside = [a for a in addresses if not is_loopback(a) and a.lower() not in allow]
    if outside:
        return (
            f"{host} resolves to {outside[0]}, outside loopback; "
            "list it under [network] allow_hosts in bench.toml to allow load there"
        )
    return None
