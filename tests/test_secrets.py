"""Secrets (issue 14 item 3), the pure parts: what wardwatch/redact.py replaces, the log
filter on a real logging handler, config --show, the readings' last guard, and configs that
carry credentials inside URLs refused with a pointer to the right key. The end-to-end run
on real services is tests/test_secrets_e2e.py."""

from __future__ import annotations

import base64
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from wardwatch import redact
from wardwatch.agent.core import cli as agent_cli
from wardwatch.agent.core.config import load_config as load_agent
from wardwatch.agent.core.text import safe_readings
from wardwatch.collector import cli as collector_cli
from wardwatch.collector.config import load_config as load_collector
from wardwatch.config import ConfigError
from wardwatch.wire import Reading

PW = "Sëcret/pw+42"


@pytest.fixture(autouse=True)
def _forget() -> Iterator[None]:
    redact.clear()
    yield
    redact.clear()


def test_a_secret_and_its_encodings_become_stars_and_uri_userinfo_goes() -> None:
    redact.register([PW], user="admin")
    basic = base64.b64encode(f"admin:{PW}".encode()).decode()
    text = (f"raw {PW} url {quote(PW, safe='')} b64 {base64.b64encode(PW.encode()).decode()} "
            f"basic {basic} json {PW!a} uri rtsp://admin:other@10.0.0.5/live")  # fmt: skip
    out = redact.redact(text)
    assert PW not in out and quote(PW, safe="") not in out and basic not in out
    assert out.startswith("raw *** url *** b64 *** basic ***"), out
    assert "rtsp://10.0.0.5/live" in out and "other" not in out
    assert redact.strip_userinfo("rtsp://admin:p@ss@10.0.0.5/a@b x http://h/") == "rtsp://10.0.0.5/a@b x http://h/"
    assert redact.strip_userinfo("mail admin@ward.gov.vn") == "mail admin@ward.gov.vn"
    # Unrelated text is left as it is; a value too short to redact safely is not registered.
    assert redact.redact("device sw-1 up") == "device sw-1 up"
    redact.register(["ab"])
    assert redact.redact("tab cab") == "tab cab"


def test_the_log_filter_redacts_messages_arguments_and_tracebacks() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    logger = logging.getLogger("wardwatch.test_secrets")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        redact.install_log_filter(logger)
        redact.register([PW])
        logger.warning("login with %s failed", PW)
        logger.warning("snapshot http://admin:%s@cam/x.jpg", "p4ss")
        try:
            raise ValueError(f"bad password {PW}")
        except ValueError:
            logger.exception("oops")
    finally:
        logger.removeHandler(handler)
        logger.propagate = True
    text = stream.getvalue()
    assert PW not in text and "p4ss" not in text, text
    assert "login with *** failed" in text and "http://cam/x.jpg" in text and "ValueError: bad password ***" in text


def _agent_yaml(tmp_path: Path, **over: object) -> Path:
    (tmp_path / "priv.key").write_text("privpriv-key-1\n")
    doc: dict[str, object] = {
        "agent": {"id": "a1", "ward": "cam-pho"},
        "mqtt": {"host": "127.0.0.1", "username": "a1", "password": "${WW_T_MQTT}"},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v3": {"snmp": {"version": 3, "user": "mon", "auth_protocol": "SHA", "auth_key": "authauth-key-1",
                                 "priv_protocol": "AES", "priv_key_file": "priv.key"}},
                 "cam": {"onvif": {"username": "admin", "password": "cam-pass-1"}}},
        "devices": [{"id": "sw", "kind": "switch", "host": "127.0.0.1", "auth": "v3"}],
        **over,
    }  # fmt: skip
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_agent_config_show_prints_defaults_and_stars_with_their_source(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("WW_T_MQTT", "mqtt-pass-1")
    assert agent_cli.main(["config", "--show", "-c", str(_agent_yaml(tmp_path))]) == 0
    out = capsys.readouterr().out
    for secret in ("mqtt-pass-1", "authauth-key-1", "privpriv-key-1", "cam-pass-1"):
        assert secret not in out
    shown = yaml.safe_load(out)
    assert shown["mqtt"]["password"] == "*** (from ${WW_T_MQTT})"
    snmp = shown["auth"]["v3"]["snmp"]
    assert snmp["priv_key"] == "*** (from priv_key_file)" and snmp["auth_key"] == "*** (written in the config)"
    assert shown["devices"][0]["interval"] == 60.0 and shown["mqtt"]["keepalive"] == 30.0  # the defaults
    assert agent_cli.main(["config", "-c", str(_agent_yaml(tmp_path))]) == 0
    assert capsys.readouterr().out.strip().endswith(": valid")


def test_collector_config_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "tok").write_text("bearer-token-0123456789")
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "influx": {"username": "ww", "password": "influx-pass-1"},
        "http": {"host": "0.0.0.0", "token_file": "tok"},
        "alerts": {"ack_secret": "ack-secret-123", "channels": {
            "tg": {"type": "telegram", "token": "123:tg-token-1", "chat_id": "1"},
            "mail": {"type": "email", "host": "smtp.example", "username": "u", "password": "smtp-pass-1",
                     "from": "a@b.c", "to": ["d@e.f"]}}},
    }))  # fmt: skip
    assert collector_cli.main(["config", "--show", "-c", str(path)]) == 0
    out = capsys.readouterr().out
    for secret in ("influx-pass-1", "bearer-token-0123456789", "ack-secret-123", "tg-token-1", "smtp-pass-1"):
        assert secret not in out
    shown = yaml.safe_load(out)
    assert shown["http"]["token"] == "*** (from token_file)"
    assert shown["alerts"]["channels"]["mail"]["from"] == "a@b.c"  # the file's spelling of the key
    assert shown["alerts"]["channels"]["tg"]["base_url"] == "https://api.telegram.org"
    assert shown["spool"]["max_mb"] == 4096


@pytest.mark.parametrize(("section", "error"), [
    ({"influx": {"url": "http://admin:pw-in-url@127.0.0.1:8086"}},
     "influx.url: credentials in the URL are not allowed; use influx.username and influx.password (or password_file)"),
    ({"influx": {"url": "https://tok-in-url@influx.example"}}, "influx.url: credentials in the URL are not allowed"),
    ({"mqtt": {"host": "u:pw-in-url@broker"}},
     "mqtt.host: credentials in the host are not allowed; use mqtt.username and mqtt.password (or password_file)"),
    ({"mqtt": {"host": "mqtt://broker.example"}}, "mqtt.host: a host name or address only, not a URL"),
    ({"http": {"external_url": "https://u:pw-in-url@ww.example"}},
     "http.external_url: credentials in the URL are not allowed; the links it makes are sent to people"),
    ({"alerts": {"channels": {"h": {"type": "webhook", "url": "https://u:pw-in-url@hook.example/x"}}}},
     "alerts.channels.h.url: credentials in the URL are not allowed; use the channel's bearer_token"),
    ({"alerts": {"channels": {"t": {"type": "telegram", "token": "1:a", "chat_id": "1",
                                    "base_url": "https://u:pw-in-url@tg.example"}}}},
     "alerts.channels.t.base_url: credentials in the URL are not allowed; the bot token goes in token"),
    ({"alerts": {"channels": {"t": {"type": "telegram", "token": "1:a", "chat_id": "1",
                                    "base_url": "https://api.telegram.org/bot123456:pw-in-url"}}}},
     "alerts.channels.t.base_url: the bot token goes in token (or token_file), not in base_url"),
    ({"alerts": {"channels": {"z": {"type": "zalo", "token": "z", "chat_id": "1",
                                    "base_url": "https://u:pw-in-url@zalo.example"}}}},
     "alerts.channels.z.base_url: credentials in the URL are not allowed"),
    ({"alerts": {"channels": {"m": {"type": "email", "host": "u:pw-in-url@smtp.example", "from": "a@b.c",
                                    "to": ["d@e.f"]}}}},
     "alerts.channels.m.host: credentials in the host are not allowed; use the channel's username and password"),
])  # fmt: skip
def test_credentials_inside_urls_are_refused_with_a_pointer(tmp_path: Path, section: dict[str, object],
                                                            error: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(section))
    with pytest.raises(ConfigError) as exc:
        load_collector(path)
    assert str(exc.value).startswith(error), exc.value
    assert "pw-in-url" not in str(exc.value)


@pytest.mark.parametrize(("over", "error"), [
    ({"devices": [{"id": "sw", "kind": "switch", "host": "admin:pw-in-url@10.0.0.2", "auth": "v3"}]},
     "devices[0].host: credentials in the host are not allowed; put them in an auth profile"),
    ({"auth": {"v3": {"snmp": {"version": 3, "user": "mon", "auth_protocol": "SHA", "auth_key": "pw-in-u"}}}},
     "auth.v3.snmp: SNMPv3 keys must be at least 8 characters"),
    ({"auth": {"v2": {"snmp": {"version": "2c", "community": ["pw-in-url"]}}}},
     "auth.v2.snmp.community: Input should be a valid string"),
])  # fmt: skip
def test_agent_config_errors_never_echo_the_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                   over: dict[str, object], error: str) -> None:
    monkeypatch.setenv("WW_T_MQTT", "x")
    with pytest.raises(ConfigError) as exc:
        load_agent(_agent_yaml(tmp_path, **over))
    assert str(exc.value).startswith(error), exc.value
    assert "pw-in-u" not in str(exc.value)


def test_readings_lose_secrets_and_uri_logins_before_the_outbox() -> None:
    redact.register(["community-1"])
    good = Reading(device="sw", kind="switch", measurement="if_traffic", time_ms=1, fields={"in_octets": 5},
                   tags={"if_name": "Gi0/1"})
    bad = Reading(device="cam", kind="camera", measurement="device_status", time_ms=1,
                  fields={"up": 0, "detail": "rtsp://admin:pw9@10.0.0.5/live: 401; community-1 refused"},
                  tags={"if_name": "community-1"})  # fmt: skip
    out, removed = safe_readings([good, bad])
    assert out[0] is good and removed == 0
    assert out[1].fields["detail"] == "rtsp://10.0.0.5/live: 401; *** refused" and out[1].tags["if_name"] == "***"


def test_a_community_named_like_a_vendor_leaves_the_vendor_tag_alone() -> None:
    """The vendor tag is wardwatch's own word (the profile's), not the device's: a community
    that happens to be "mikrotik" must not turn every MikroTik reading's vendor into ***."""
    redact.register(["mikrotik"])
    r = Reading(device="ap-1", kind="ap", measurement="device_status", time_ms=1,
                fields={"up": 0, "detail": "community mikrotik refused"}, tags={"vendor": "mikrotik"})  # fmt: skip
    (out,), _ = safe_readings([r])
    assert out.tags["vendor"] == "mikrotik" and out.fields["detail"] == "community *** refused"


def test_an_uncaught_exception_is_printed_redacted() -> None:
    """A crash's traceback goes to stderr past logging: the CLIs' excepthook redacts it."""
    import subprocess
    import sys

    code = ("import logging; from wardwatch import redact; logging.basicConfig(); redact.install_log_filter(); "
            "redact.register(['crash-secret-1']); raise RuntimeError('cannot use crash-secret-1 at rtsp://a:b@c/d')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1 and "RuntimeError: cannot use *** at rtsp://c/d" in done.stderr, done.stderr
    assert "crash-secret-1" not in done.stderr


def test_device_text_is_redacted_before_it_is_cut() -> None:
    """A URI longer than the cap, with the login straddling the cut, leaves no part of it."""
    from wardwatch.agent.core.text import clean

    redact.register(["cam-password-1"])
    uri = "rtsp://admin:cam-password-1@10.0.0.5/Streaming/Channels/101"
    assert clean(uri, limit=22) == "rtsp://10.0.0.5/Stream"
    assert clean("sysName quoting cam-password-1\n", limit=40) == "sysName quoting ***"
