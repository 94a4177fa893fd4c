"""The example configs in configs/ load, so the docs that point at them stay true."""

from __future__ import annotations

from pathlib import Path

import pytest

from wardwatch.agent.core.config import load_config as load_agent
from wardwatch.collector.config import load_config as load_collector

CONFIGS = Path(__file__).parent.parent / "configs"
ENV = {"WARDWATCH_MQTT_PASSWORD": "pw-123456", "V3_AUTH": "authpass123", "V3_PRIV": "privpass123",
       "WARDWATCH_HTTP_TOKEN": "token-0123456789abcdef", "CAM_PASS": "cam-pass-1"}


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
