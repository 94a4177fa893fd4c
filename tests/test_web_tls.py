"""The collector's optional HTTPS listener (``http.tls_cert``/``tls_key``), over real TLS
sockets: a browser that trusts the CA gets the pages with HSTS and a Secure cookie; one that
does not is refused; plain HTTP to the TLS port gets nothing; a bad certificate stops the
start with a line naming the file."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from wardwatch.collector.brokerconfig import Inventory, generate
from wardwatch.collector.config import HttpSection
from wardwatch.collector.http import base_url, start_http
from wardwatch.collector.source import StartupError
from wardwatch.simulators.lab import free_port

TOKEN = "tls-test-token-0123456789"


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a server certificate for 127.0.0.1, as broker-config makes them."""
    out = tmp_path_factory.mktemp("webtls")
    generate(Inventory.model_validate({"collectors": [{"id": "web"}]}), out, listen="127.0.0.1:8883", user=None)
    return out / "tls"


def hcfg(tls: Path, **over: object) -> HttpSection:
    doc: dict[str, object] = {"host": "127.0.0.1", "port": free_port(), "token": TOKEN,
                              "tls_cert": tls / "server.pem", "tls_key": tls / "server.key"}  # fmt: skip
    return HttpSection.model_validate({**doc, **over})


@pytest.fixture
async def server(tls: Path) -> AsyncIterator[HttpSection]:
    cfg = hcfg(tls)
    runner = await start_http(cfg, health=lambda: {"status": "ok", "mqtt_connected": True})
    try:
        yield cfg
    finally:
        await runner.cleanup()


def trusting(tls: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(tls / "ca.pem"))


async def test_https_serves_with_hsts_and_a_secure_cookie(server: HttpSection, tls: Path) -> None:
    url = base_url(server)
    assert url == f"https://127.0.0.1:{server.port}"
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trusting(tls))) as http:
        async with http.get(f"{url}/healthz") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"
            assert resp.headers["Strict-Transport-Security"].startswith("max-age=")
        async with http.get(f"{url}/api/v1/wards") as resp:
            assert resp.status == 401  # TLS is not a credential
        async with http.post(f"{url}/login", data={"token": TOKEN, "next": "/"}, allow_redirects=False) as resp:
            assert resp.status == 303
            cookie = resp.headers["Set-Cookie"]
            assert "ww_session=" in cookie and "Secure" in cookie and "HttpOnly" in cookie


async def test_a_client_that_does_not_trust_the_ca_is_refused(server: HttpSection) -> None:
    async with aiohttp.ClientSession() as http:  # the system's CAs only
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await http.get(f"{base_url(server)}/healthz")


async def test_plain_http_to_the_tls_port_gets_no_page(server: HttpSection) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientError):
            async with http.get(f"http://127.0.0.1:{server.port}/healthz") as resp:
                await resp.read()
                assert resp.status >= 400  # some servers answer 400 in clear; no health document then


@pytest.mark.parametrize(
    ("which", "message"),
    [
        ("missing_key", "http.tls: {key}: no such file"),
        ("wrong_key", "http.tls: cannot use {cert} with {key}"),
    ],
)
async def test_a_certificate_that_cannot_be_used_stops_the_start(tls: Path, tmp_path: Path, which: str,
                                                                 message: str) -> None:  # fmt: skip
    cert = tls / "server.pem"
    if which == "missing_key":
        key = tmp_path / "nowhere.key"
    else:
        key = tls / "ca.key"  # a key, but not the certificate's
    cfg = hcfg(tls, tls_key=key)
    with pytest.raises(StartupError) as err:
        await start_http(cfg, health=lambda: {})
    assert str(err.value).startswith(message.format(cert=cert, key=key))
    # The port was never taken: a plain listener can have it at once.
    runner = web.AppRunner(web.Application())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", cfg.port)
    await site.start()
    await runner.cleanup()


def test_cert_and_key_go_together(tls: Path) -> None:
    with pytest.raises(ValueError, match="tls_cert and tls_key go together"):
        HttpSection.model_validate({"tls_cert": tls / "server.pem"})
