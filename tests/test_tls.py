"""The run's certificate and the client's TLS context (no server: contexts only)."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
import stat
from pathlib import Path

from cryptography import x509

from loadgen.tls import VALID_DAYS, client_context, make_certificate


def test_the_certificate_names_localhost_and_its_key_is_private(tmp_path: Path) -> None:
    cert_file, key_file = make_certificate(tmp_path / "run", "192.0.2.7")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    addresses = names.get_values_for_type(x509.IPAddress)
    assert {ipaddress.ip_address(a) for a in ("127.0.0.1", "::1", "192.0.2.7")} <= set(addresses)
    life = cert.not_valid_after_utc - datetime.datetime.now(datetime.UTC)
    assert datetime.timedelta(days=VALID_DAYS - 1) < life <= datetime.timedelta(days=VALID_DAYS)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_file, key_file)  # the pair a server under test is given


def test_a_host_name_is_named_too(tmp_path: Path) -> None:
    cert_file, _ = make_certificate(tmp_path, "bench.test")
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"localhost", "bench.test"}


def test_the_client_context_offers_alpn_and_checks_no_certificate() -> None:
    context = client_context(["h2"])
    assert context.verify_mode == ssl.CERT_NONE and not context.check_hostname
    assert context.minimum_version == ssl.TLSVersion.TLSv1_2
