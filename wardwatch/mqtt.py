"""Building a paho-mqtt 2.x client from the shared ``mqtt:`` config section.

Both the agent and the collector use paho directly: its network loop runs in paho's own
thread and callbacks are handed to asyncio with ``call_soon_threadsafe``. The reconnect
policy belongs to the caller.
"""

from __future__ import annotations

import logging
import ssl

from paho.mqtt.client import Client, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion

from wardwatch.config import MqttSection, is_loopback

log = logging.getLogger(__name__)
_warned_clear: set[str] = set()


def make_client(cfg: MqttSection, *, client_id: str, manual_ack: bool = False) -> Client:
    client = Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=cfg.client_id or client_id,
        protocol=MQTTv5,
        manual_ack=manual_ack,
    )
    if cfg.username:
        password = cfg.password.get_secret_value() if cfg.password else None
        client.username_pw_set(cfg.username, password)
    if cfg.tls is False and not is_loopback(cfg.host) and cfg.host not in _warned_clear:
        _warned_clear.add(cfg.host)  # once per broker and process, not per reconnect
        log.warning("mqtt.tls is false: the connection to %s:%d, its login and every message go in clear",
                    cfg.host, cfg.port)
    if cfg.tls:
        client.tls_set(
            ca_certs=str(cfg.tls.ca_file) if cfg.tls.ca_file else None,
            certfile=str(cfg.tls.cert_file) if cfg.tls.cert_file else None,
            keyfile=str(cfg.tls.key_file) if cfg.tls.key_file else None,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(cfg.tls.insecure)
    return client


def describe(cfg: MqttSection) -> str:
    """Where we connect, for log lines; never the password."""
    scheme = "mqtts" if cfg.tls else "mqtt"
    user = f"{cfg.username}@" if cfg.username else ""
    return f"{scheme}://{user}{cfg.host}:{cfg.port}"
