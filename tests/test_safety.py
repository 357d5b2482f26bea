"""Load goes to loopback only, unless a host is allowed by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pytest

from commands import load as loadcmd
from loadgen.safety import check_host, is_loopback_address


def fake_dns(table: dict[str, list[str]]) -> Callable[[str], Iterable[str]]:
    def resolve(host: str) -> Iterable[str]:
        if host not in table:
            raise OSError(f"no such host {host}")
        return table[host]

    return resolve


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "[::1]", "localhost"])
def test_loopback_hosts_pass(host: str) -> None:
    assert check_host(host) is None


@pytest.mark.parametrize(
    "host", ["10.0.0.1", "192.168.1.20", "8.8.8.8", "::ffff:10.0.0.1", "0.0.0.0"]
)
def test_other_addresses_are_refused(host: str) -> None:
    problem = check_host(host)
    assert problem is not None
    assert "loopback" in problem
    assert "--allow-host" in problem
    assert "allow_hosts = [" in problem and "bench.toml" in problem  # both ways are named


def test_names_are_resolved_before_deciding() -> None:
    dns = fake_dns(
        {
            "bench.local": ["127.0.0.2"],
            "sneaky.local": ["10.1.2.3"],
            "mixed.local": ["127.0.0.1", "192.0.2.7"],
            "empty.local": [],
        }
    )
    assert check_host("bench.local", resolve=dns) is None
    assert "10.1.2.3" in (check_host("sneaky.local", resolve=dns) or "")
    assert "192.0.2.7" in (check_host("mixed.local", resolve=dns) or "")
    assert check_host("empty.local", resolve=dns) is not None
    assert "cannot resolve" in (check_host("nowhere.invalid", resolve=dns) or "")


def test_allow_list() -> None:
    def no_dns(host: str) -> list[str]:
        raise AssertionError("an allowed name is not resolved")

    assert check_host("Target.Example", ["target.example"], resolve=no_dns) is None
    assert check_host("[2001:db8::5]", ["2001:db8::5"], resolve=no_dns) is None
    dns = fake_dns({"lab": ["10.9.9.9"]})
    assert check_host("lab", ["10.9.9.9"], resolve=dns) is None
    assert check_host("lab", ["10.9.9.8"], resolve=dns) is not None
    assert check_host("") == "no host given"


def test_loopback_addresses() -> None:
    assert is_loopback_address("127.255.255.254")
    assert is_loopback_address("::ffff:127.0.0.1")
    assert is_loopback_address("::1%lo")
    assert not is_loopback_address("128.0.0.1")
    assert not is_loopback_address("not-an-address")


def test_load_command_refuses_other_hosts(capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before any socket is opened: exit status 2 and a clear message.
    assert loadcmd.main(["http://10.11.12.13:8000/hello/", "-d", "1", "--json"]) == 2
    err = capsys.readouterr().err
    assert "refusing to send load" in err and "10.11.12.13" in err
    assert loadcmd.main(["https://127.0.0.1/"]) == 2
    assert "only http://" in capsys.readouterr().err
