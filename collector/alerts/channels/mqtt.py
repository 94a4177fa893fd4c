"""Alerts on the collector's own MQTT connection: one message per alert, QoS 1, on
``wardwatch/v1/alerts/{ward}/{severity}``.

The payload is the webhook's ``alerts[]`` entry for the alert, plus ``"schema": 1`` and
a ``wardwatch`` object (the notice's kind, the ward's display name, the reason, the
suppressed devices, the acknowledgement link). The ``publish`` given by the collector
applies QoS 1 (and the channel's ``retain``); it returns False when not connected, which
is a retryable failure.
"""

from __future__ import annotations

import json
from typing import Any, Final

from wardwatch import wire
from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.channels import Publish
from wardwatch.collector.alerts.channels.webhook import alert_extras, alert_object
from wardwatch.collector.alerts.config import MqttChannel
from wardwatch.collector.alerts.model import DeliveryError, Notice, NoticeAlert

SCHEMA: Final = 1


def message(na: NoticeAlert, notice: Notice) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        **alert_object(na, notice),
        "wardwatch": {"ward_name": notice.ward_name, "kind": notice.kind, **alert_extras(na)},
    }


class MqttSender:
    def __init__(self, name: str, cfg: MqttChannel, publish: Publish) -> None:
        self.name = name
        self.cfg = cfg
        self._publish = publish

    async def send(self, notice: Notice) -> None:
        for na in text.ordered(notice.alerts):
            topic = wire.alerts_topic(notice.ward, na.alert.severity)
            body = json.dumps(message(na, notice), ensure_ascii=False).encode()
            if not self._publish(topic, body):
                raise DeliveryError(f"MQTT not connected: {topic} not published", retry=True)

    async def close(self) -> None:
        return None
