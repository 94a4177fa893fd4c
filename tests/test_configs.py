"""The example configs in configs/ load, so the docs that point at them stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from wardwatch.agent.core.config import load_config as load_agent
from wardwatch.collector.config import load_config as load_collector

CONFIGS = Path(__file__).parent.parent / "configs"
ENV = {"WARDWATCH_MQTT_PASSWORD": "pw-123456", "V3_AUTH": "authpass123", "V3_PRIV": "privpass123",
       "WARDWATCH_HTTP_TOKEN": "token-0123456789abcdef", "CAM_PASS": "cam-pass-1",
       "WARDWATCH_TG_TOKEN": "123:tg", "WARDWATCH_ZALO_TOKEN": "zalo-1", "WARDWATCH_SMTP_PASSWORD": "smtp-pw"}


@pytest.fixture(autouse=True)
def secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)


def test_agent_example_loads() -> None:
    cfg = load_agent(CONFIGS / "agent-example.yaml")
    assert cfg.agent.ward == "cam-pho"
    assert {d.id for d in cfg.devices} == {"sw-core", "sw-hall", "cam-cho-1"}
    cam = next(d for d in cfg.devices if d.kind == "camera")
    assert cam.feed is not None and (cam.feed.switch, cam.feed.port) == ("sw-hall", "Gi1/0/7")
    onvif = cfg.auth[cam.auth].onvif
    assert onvif is not None and onvif.password.get_secret_value() == "cam-pass-1"
    assert cfg.mqtt.password is not None and cfg.mqtt.password.get_secret_value() == "pw-123456"


def test_collector_example_loads() -> None:
    cfg = load_collector(CONFIGS / "collector-example.yaml")
    assert cfg.influx.api == "v1"
    assert cfg.mqtt.share_group == "collectors"
    assert cfg.timezone == "Asia/Ho_Chi_Minh"
    assert len(cfg.wards) == 13 and cfg.wards["cam-pho"] == "Cẩm Phô" and cfg.wards["cua-dai"] == "Cửa Đại"
    from wardwatch.simulators.fleet import WARDS  # the ids the demo fleet publishes

    assert set(cfg.wards) == {ward for ward, _name, _ports in WARDS}
    assert cfg.alerts is not None and cfg.alerts.maintenance[0].rrule == "FREQ=WEEKLY;BYDAY=SU;BYHOUR=2"
    assert cfg.alerts.maintenance[0].duration == 7200
    assert set(cfg.alerts.channels) == {"noc", "tg", "zalo", "mail", "bus"}
    assert cfg.alerts.routes[0].escalate is not None and cfg.alerts.routes[0].escalate.after == 900
    mail = cfg.alerts.channels["mail"]
    assert mail.type == "email" and mail.password is not None and mail.password.get_secret_value() == "smtp-pw"


@pytest.mark.parametrize(("yaml_text", "error"), [
    ("timezone: Mars/Olympus", "timezone: unknown time zone 'Mars/Olympus'"),
    ("wards: {'cẩm phô': x}", "wards: 'cẩm phô' is not a ward id"),
    ("alerts: {maintenance: [{rrule: 'FREQ=WEEKLY;BYHOUR=25', duration: 1h}]}", "alerts.maintenance[0].rrule: "),
    ("alerts: {maintenance: [{rrule: 'FREQ=DAILY', duration: 0}]}", "alerts.maintenance[0].duration: "),
    ("alerts: {maintenance: [{rrule: 'FREQ=DAILY', duration: 1h, every: 2}]}", "alerts.maintenance[0].every: unknown"),
    ("alerts: {routes: [{channels: [nope]}]}", "alerts: routes[0]: unknown channel 'nope' (channels: none defined)"),
    ("alerts: {channels: {x: {type: pager}}}", "alerts.channels.x: "),
    ("alerts: {channels: {x: {type: webhook, url: 'http://u:p@h/k'}}}", "alerts.channels.x.url: credentials in"),
    ("alerts: {routes: [{match: {colour: red}, channels: []}]}", "alerts.routes[0].match: "),
    ("alerts: {wards: ['*', cam-pho]}", "alerts.wards: "),
])  # fmt: skip
def test_collector_time_zone_wards_and_maintenance_are_checked(tmp_path: Path, yaml_text: str, error: str) -> None:
    from wardwatch.config import ConfigError

    path = tmp_path / "collector.yaml"
    path.write_text(yaml_text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_collector(path)
    assert str(exc.value).startswith(error), exc.value


def test_the_shipped_broker_config_sets_its_queue_limits() -> None:
    """Mosquitto's default max_queued_messages (1000) drops silently: ours says what it wants."""
    settings = dict(
        line.split(None, 1) for line in (CONFIGS / "mosquitto.conf").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert settings["max_queued_messages"] == "0"
    assert settings["persistence"] == "true"
    assert int(settings["message_size_limit"]) >= 1024 * 1024  # the wire's payload cap


def test_secret_file_keys_are_only_the_secret_fields() -> None:
    from wardwatch.agent.core.config import AgentConfig
    from wardwatch.collector.config import CollectorConfig
    from wardwatch.config import secret_fields

    assert secret_fields(AgentConfig) == {"password", "community", "auth_key", "priv_key"}
    assert {"password", "token"} <= secret_fields(CollectorConfig)
    assert "ca" not in secret_fields(AgentConfig)  # tls.ca_file is a path, not a secret


def test_the_shipped_rules_load_with_the_names_of_the_contract() -> None:
    from wardwatch.collector.alerts.rules import load_rules

    names = [r.name for r in load_rules(None)]
    assert names == ["device_down", "camera_not_ok", "poe_lost", "agent_offline", "clock_skew",
                     "uplink_saturated", "ap_radio_down", "ap_clients_high", "if_errors", "outbox_backlog", "flapping"]


@pytest.mark.parametrize(("yaml_text", "error"), [
    ("rules: [{name: x, series: device_status, field: up, when: {equals: 0, above: 1}, summary: s}]",
     "rules[0].threshold.when: give exactly one test"),
    ("rules: [{name: x, series: nosuch, field: up, when: {equals: 0}, summary: s}]", "rules[0].threshold.series: "),
    ("rules: [{name: x, series: device_status, field: up, when: {equals: 0}, summary: s, colour: red}]",
     "rules[0].threshold.colour: unknown key"),
    ("rules: [{name: f, type: flapping, watch: [nope], summary: s}]", "rules[0].watch: unknown rule 'nope'"),
    ("rules: []", "rules: "),
])  # fmt: skip
def test_a_bad_rule_file_names_the_key(tmp_path: Path, yaml_text: str, error: str) -> None:
    from wardwatch.collector.alerts.rules import load_rules
    from wardwatch.config import ConfigError

    path = tmp_path / "rules.yaml"
    path.write_text(yaml_text + "\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        load_rules(path)
    assert str(exc.value).startswith(f"{path}: {error}"), str(exc.value)
