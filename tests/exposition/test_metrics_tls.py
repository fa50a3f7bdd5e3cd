"""/metrics over TLS with client certificates (mutual TLS), with real certificates from openssl."""

from __future__ import annotations

import ssl
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from sentinel.agent.lifecycle import Agent
from sentinel.config.loader import load
from tests.conftest import require_tool
from tests.support.agent import write_config
from tests.support.net import free_port
from tests.support.pki import make_test_pki


@pytest.fixture
def pki(tmp: Path) -> Path:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA."""
    require_tool("openssl", "openssl")  # under CI=true a missing tool fails, as everywhere
    return make_test_pki(tmp / "pki")


def test_mutual_tls_accepts_a_client_certificate_and_refuses_none(tmp: Path, pki: Path) -> None:
    """With client_ca_file set, a scrape without a client certificate fails; with one it succeeds."""
    tls = (
        f'tls_cert_file = "{pki / "server.pem"}"\ntls_key_file = "{pki / "server.key"}"\n'
        f'client_ca_file = "{pki / "ca.pem"}"\n'
    )
    path = write_config(tmp, port=free_port(), health=False)
    path.write_text(path.read_text().replace("[metrics]\n", "[metrics]\n" + tls))
    agent = Agent(load(path))
    agent.start()
    try:
        assert agent.address is not None
        url = f"https://127.0.0.1:{agent.address[1]}/metrics"
        anonymous = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        with pytest.raises((urllib.error.URLError, ssl.SSLError, ConnectionError)):
            urllib.request.urlopen(url, context=anonymous, timeout=5).read()
        client = ssl.create_default_context(cafile=str(pki / "ca.pem"))
        client.load_cert_chain(str(pki / "client.pem"), str(pki / "client.key"))
        with urllib.request.urlopen(url, context=client, timeout=5) as response:
            assert b"sentinel_up 1.0" in response.read()
    finally:
        agent._teardown()


def test_a_silent_client_does_not_block_tls_scrapes(tmp: Path, pki: Path) -> None:
    """A connection that never starts its TLS handshake must not stall other scrapes."""
    import socket

    tls = f'tls_cert_file = "{pki / "server.pem"}"\ntls_key_file = "{pki / "server.key"}"\n'
    path = write_config(tmp, port=free_port(), health=False)
    path.write_text(path.read_text().replace("[metrics]\n", "[metrics]\n" + tls))
    agent = Agent(load(path))
    agent.start()
    try:
        assert agent.address is not None
        with socket.create_connection(("127.0.0.1", agent.address[1]), timeout=5):
            context = ssl.create_default_context(cafile=str(pki / "ca.pem"))
            url = f"https://127.0.0.1:{agent.address[1]}/metrics"
            with urllib.request.urlopen(url, context=context, timeout=5) as response:
                assert b"sentinel_up 1.0" in response.read()
    finally:
        agent._teardown()
