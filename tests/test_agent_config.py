"""A bad agent config exits 2 with one line naming the key; a good one loads."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.util import BIN
from wardwatch.agent.core.config import load_config
from wardwatch.config import ConfigError

GOOD = {
    "agent": {"id": "cam-pho-1", "ward": "cam-pho"},
    "mqtt": {"host": "127.0.0.1", "port": 1883},
    "outbox": {"path": "./outbox.db"},
    "auth": {
        "v2c-public": {"snmp": {"version": "2c", "community": "public"}},
        "v3-ward": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": "${V3_AUTH}",
                             "priv_protocol": "AES", "priv_key_file": "priv.key"}},
    },
    "devices": [
        {"id": "sw-core", "kind": "switch", "host": "127.0.0.1", "port": 161, "auth": "v2c-public", "interval": "30s"},
        {"id": "sw-2", "kind": "switch", "host": "127.0.0.1", "auth": "v3-ward", "interval": "1m"},
    ],
}


def write(tmp_path: Path, cfg: dict) -> Path:
    (tmp_path / "priv.key").write_text("privpass123\n")
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def mutate(path: str, value: object, *, delete: bool = False) -> dict:
    cfg = yaml.safe_load(yaml.safe_dump(GOOD))
    *parents, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    node = cfg
    for p in parents:
        node = node[p]
    if delete:
        del node[last]
    else:
        node[last] = value
    return cfg


def test_good_config_loads_with_secrets_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("V3_AUTH", "authpass123")
    cfg = load_config(write(tmp_path, GOOD))
    snmp = cfg.auth["v3-ward"].snmp
    assert snmp is not None and snmp.auth_key is not None and snmp.priv_key is not None
    assert snmp.auth_key.get_secret_value() == "authpass123"
    assert snmp.priv_key.get_secret_value() == "privpass123"
    assert cfg.devices[1].interval == 60.0
    assert "authpass123" not in repr(cfg)


BAD = [
    (mutate("devices.0.colour", "red"), "devices[0].colour: unknown key"),
    (mutate("mqtt.port", "eighty"), "mqtt.port:"),
    (mutate("devices.1.host", None, delete=True), "devices[1].host: required key is missing"),
    (mutate("devices.0.auth", "ward7"), "devices[0].auth: unknown auth profile 'ward7'"),
    (mutate("devices.0.interval", "soon"), "devices[0].interval:"),
    (mutate("devices.0.kind", "router"), "devices[0].kind:"),
    (mutate("devices.1.id", "sw-core"), "devices[1].id: 'sw-core' is already used"),
    (mutate("auth.v2c-public.snmp.community", None, delete=True), "auth.v2c-public.snmp:"),
]


@pytest.mark.parametrize(("cfg", "message"), BAD, ids=[m for _, m in BAD])
def test_bad_config_names_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg: dict, message: str) -> None:
    monkeypatch.setenv("V3_AUTH", "authpass123")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, cfg))
    assert str(err.value).startswith(message), str(err.value)


def test_missing_env_secret_is_named_not_blank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("V3_AUTH", raising=False)
    with pytest.raises(ConfigError, match=r"auth\.v3-ward\.snmp\.auth_key: environment variable V3_AUTH is not set"):
        load_config(write(tmp_path, GOOD))


def test_a_default_path_stands_in_for_an_unset_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Units give $CREDENTIALS_DIRECTORY (systemd's LoadCredential=); the same config run by hand
    (``wardwatch-agent check``) reads the file from the default directory (docs/deploy.md)."""
    monkeypatch.setenv("V3_AUTH", "authpass123")
    unit_dir, hand_dir = tmp_path / "creds", tmp_path / "etc"
    for d, secret in ((unit_dir, "from-the-unit"), (hand_dir, "from-the-etc")):
        d.mkdir()
        (d / "mqtt-password").write_text(secret + "\n")
    cfg = mutate("mqtt.password_file", f"${{CREDENTIALS_DIRECTORY:-{hand_dir}}}/mqtt-password")
    cfg["outbox"]["path"] = "${STATE_DIRECTORY:-/var/lib/wardwatch}/outbox.db"
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    by_hand = load_config(write(tmp_path, cfg))
    assert by_hand.mqtt.password is not None and by_hand.mqtt.password.get_secret_value() == "from-the-etc"
    assert str(by_hand.outbox.path) == "/var/lib/wardwatch/outbox.db"
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(unit_dir))
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    unit = load_config(write(tmp_path, cfg))
    assert unit.mqtt.password is not None and unit.mqtt.password.get_secret_value() == "from-the-unit"
    assert unit.outbox.path == tmp_path / "state" / "outbox.db"


@pytest.mark.parametrize(("cfg", "key"), [
    (mutate("agent.colour", "red"), "agent.colour"),
    (mutate("mqtt.port", [1]), "mqtt.port"),
    (mutate("devices.0.host", None, delete=True), "devices[0].host"),
    (mutate("devices.1.auth", "ward7"), "devices[1].auth"),
])
def test_cli_exits_2_with_one_line(tmp_path: Path, cfg: dict, key: str) -> None:
    proc = subprocess.run([str(BIN / "wardwatch-agent"), "run", "-c", str(write(tmp_path, cfg))],
                          capture_output=True, text=True, timeout=60, env={"V3_AUTH": "authpass123", "PATH": ""})
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"wardwatch-agent: config error: {key}:"), lines[0]
    assert "authpass123" not in proc.stderr and "privpass123" not in proc.stderr


@pytest.mark.parametrize(("written", "version"), [(1, "1"), (2, "2c"), (3, "3"), ("1", "1"), ("2c", "2c"),
                                                  ("2", "2c"), ("3", "3")])
def test_snmp_version_as_a_number_or_a_string(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: object,
                                              version: str) -> None:
    monkeypatch.setenv("V3_AUTH", "authpass123")
    profile = "v3-ward" if version == "3" else "v2c-public"
    cfg = load_config(write(tmp_path, mutate(f"auth.{profile}.snmp.version", written)))
    snmp = cfg.auth[profile].snmp
    assert snmp is not None and snmp.version == version


@pytest.mark.parametrize("written", [4, 0, "v2c", "2.0", 2.0, True, None])
def test_other_snmp_versions_are_refused_by_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 written: object) -> None:
    monkeypatch.setenv("V3_AUTH", "authpass123")
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, mutate("auth.v2c-public.snmp.version", written)))
    assert str(err.value).startswith("auth.v2c-public.snmp.version: SNMP version"), str(err.value)
    assert "1, 2c (or 2) and 3" in str(err.value)
