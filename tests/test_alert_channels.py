"""The notification channels against local receivers: the Alertmanager v4 webhook, Telegram-
and Zalo-shaped bot APIs, email through aiosmtpd with STARTTLS and AUTH, MQTT through a real
Mosquitto; and deliver's bounded retries, with every attempt recorded."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.receivers import BotApiReceiver, SmtpReceiver, WebhookReceiver
from tests.util import wait_for
from wardwatch import wire
from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.channels import open_channel
from wardwatch.collector.alerts.config import (
    EmailChannel,
    MqttChannel,
    TelegramChannel,
    WebhookChannel,
    ZaloChannel,
)
from wardwatch.collector.alerts.deliver import deliver
from wardwatch.collector.alerts.model import Alert, Attempt, Behind, Notice, NoticeAlert, fingerprint
from wardwatch.simulators.lab import Service

# 14:05 on 2 December 2026 in Hội An is 07:05 UTC.
STARTED_MS = int(datetime(2026, 12, 2, 7, 5, tzinfo=UTC).timestamp() * 1000)
EXTERNAL = "https://wardwatch.hoian.example"


def make_alert(
    device: str,
    *,
    kind: str = "switch",
    rule: str = "device_down",
    severity: str = "critical",
    ward: str = "cam-pho",
    reason: str = "timeout",
    behind: list[Behind] | None = None,
    state: str = "firing",
    started_ms: int = STARTED_MS,
    ended_ms: int | None = None,
) -> Alert:
    labels = {"alertname": rule, "ward": ward, "device": device, "kind": kind, "severity": severity,
              "agent": f"{ward}-1"}
    if rule == "camera_not_ok":
        vi, en = f"Camera {device} (Cẩm Phô) lỗi: {reason}", f"Camera {device} (Cẩm Phô) not OK: {reason}"
    else:
        vi, en = f"{device} (Cẩm Phô) không phản hồi: {reason}", f"{device} (Cẩm Phô) is not answering: {reason}"
    return Alert(
        fingerprint=fingerprint(labels), rule=rule, labels=labels, state=state,
        started_ms=started_ms, updated_ms=started_ms, fired_ms=started_ms + 60_000, ended_ms=ended_ms,
        summary={"vi": vi, "en": en}, reason=reason, behind=behind or [],
    )


def dead_switch_notice(*, language: str = "vi", channel: str = "ops", ward: str = "cam-pho") -> Notice:
    """sw-a is down with 10 cameras and 3 APs behind it; cam-09 of another switch recovered."""
    behind = [Behind(f"cam-{i:02d}", "camera") for i in range(10)] + [Behind(f"ap-{i}", "ap") for i in range(3)]
    root = make_alert("sw-a", behind=behind, ward=ward)
    root.feed = "sw-core port 7"
    cam = make_alert("cam-99", kind="camera", rule="camera_not_ok", reason="rtsp_failed", ward=ward,
                     state="resolved", ended_ms=STARTED_MS + 25 * 60_000)
    return Notice(
        kind="firing", channel=channel, group_key=f"0:{ward}", ward=ward, ward_name="Cẩm Phô",
        alerts=[
            NoticeAlert(cam, "resolved"),
            NoticeAlert(root, "firing", ack_url=f"{EXTERNAL}/ack/{root.fingerprint}?sig=abc"),
        ],
        external_url=EXTERNAL, language=language,
    )


def many_alerts_notice(n: int, *, language: str = "vi") -> Notice:
    alerts = []
    for i in range(n):
        a = make_alert(f"cam-phường-{i:03d}", kind="camera", rule="camera_not_ok", severity="warning",
                       reason="không có hình ảnh", started_ms=STARTED_MS + i * 1000)
        alerts.append(NoticeAlert(a, "firing", ack_url=f"{EXTERNAL}/ack/{a.fingerprint}?sig=0123456789abcdef"))
    return Notice(kind="firing", channel="tg", group_key="0:cam-pho", ward="cam-pho", ward_name="Cẩm Phô",
                  alerts=alerts, external_url=EXTERNAL, language=language)


class Log:
    """deliver's record(): the delivery log, with the time each attempt was recorded."""

    def __init__(self) -> None:
        self.attempts: list[Attempt] = []
        self.at: list[float] = []

    def __call__(self, attempt: Attempt) -> None:
        self.attempts.append(attempt)
        self.at.append(time.monotonic())


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


@pytest.fixture
def smtp() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as r:
        yield r


def email_cfg(smtp: SmtpReceiver, **over: Any) -> EmailChannel:
    return EmailChannel.model_validate({
        "type": "email", "host": smtp.host, "port": smtp.port, "starttls": True, "ca_file": str(smtp.cert_file),
        "username": "alerts", "password": "mật-khẩu-1", "from": "wardwatch@hoian.example",
        "to": ["kythuat@hoian.example", "trucban@hoian.example"], "timeout": 5, "retries": 0, **over,
    })


# Webhook ----------------------------------------------------------------------------------

V4_KEYS = {"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels",
           "commonAnnotations", "externalURL", "alerts"}
ALERT_KEYS = {"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


async def test_webhook_payload_is_alertmanager_v4_with_our_extras_under_one_key(webhook: WebhookReceiver) -> None:
    cfg = WebhookChannel(type="webhook", url=f"{webhook.url}/hook", bearer_token="s3cr3t-token")
    channel = open_channel("ops", cfg)
    log = Log()
    notice = dead_switch_notice()
    try:
        assert await deliver(channel, notice, record=log)
    finally:
        await channel.close()

    [req] = webhook.requests
    assert req.path == "/hook" and req.method == "POST"
    assert req.headers["Authorization"] == "Bearer s3cr3t-token"
    assert req.headers["Content-Type"].startswith("application/json")
    body = req.json
    assert set(body) == V4_KEYS | {"wardwatch"}, "exactly Alertmanager's keys plus one of ours"
    assert body["version"] == "4"
    assert body["status"] == "firing"  # one alert still fires
    assert body["receiver"] == "ops"
    assert body["groupKey"] == "0:cam-pho"
    assert body["truncatedAlerts"] == 0
    assert body["groupLabels"] == {"ward": "cam-pho"}
    assert body["externalURL"] == EXTERNAL
    for key in ("groupLabels", "commonLabels", "commonAnnotations"):
        assert isinstance(body[key], dict) and all(isinstance(v, str) for v in body[key].values())
    assert body["commonLabels"] == {"ward": "cam-pho", "severity": "critical", "agent": "cam-pho-1"}

    firing, resolved = body["alerts"]  # firing first
    for a in body["alerts"]:
        assert set(a) == ALERT_KEYS
        assert all(isinstance(a[k], str) for k in ALERT_KEYS - {"labels", "annotations"})
        assert {"alertname", "ward", "device", "kind", "severity"} <= set(a["labels"])
        assert RFC3339_UTC.match(a["startsAt"]), a["startsAt"]
        assert a["generatorURL"].startswith(EXTERNAL)
        assert re.fullmatch(r"[0-9a-f]{16}", a["fingerprint"])
    assert firing["status"] == "firing" and firing["labels"]["device"] == "sw-a"
    assert firing["labels"] == notice.alerts[1].alert.labels
    assert firing["startsAt"] == "2026-12-02T07:05:00.000Z"
    assert firing["endsAt"] == "0001-01-01T00:00:00Z"  # like Alertmanager while firing
    assert firing["annotations"]["summary"] == "sw-a (Cẩm Phô) không phản hồi: timeout"
    assert "14:05 02/12/2026 (giờ Việt Nam)" in firing["annotations"]["description"]
    assert "10 camera, 3 AP" in firing["annotations"]["description"]
    assert resolved["status"] == "resolved" and resolved["endsAt"] == "2026-12-02T07:30:00.000Z"

    ours = body["wardwatch"]
    assert ours["ward_name"] == "Cẩm Phô" and ours["kind"] == "firing"
    root = ours["alerts"][firing["fingerprint"]]
    assert root["suppressed_count"] == 13
    assert sorted(s["kind"] for s in root["suppressed"]).count("camera") == 10
    assert {"device": "ap-0", "kind": "ap"} in root["suppressed"]
    assert root["reason"] == "timeout" and root["feed"] == "sw-core port 7"
    assert root["ack_url"].startswith(f"{EXTERNAL}/ack/") and root["acknowledged_by"] is None
    assert ours["alerts"][resolved["fingerprint"]]["ack_url"] == ""  # nothing to acknowledge

    assert [(a.attempt, a.ok, a.channel, a.kind) for a in log.attempts] == [(1, True, "ops", "firing")]
    assert log.attempts[0].fingerprints == [na.alert.fingerprint for na in notice.alerts]


async def test_webhook_max_alerts_counts_the_rest_in_truncated_alerts(webhook: WebhookReceiver) -> None:
    cfg = WebhookChannel(type="webhook", url=webhook.url, max_alerts=1)
    channel = open_channel("ops", cfg)
    try:
        assert await deliver(channel, dead_switch_notice(language="en"), record=Log())
    finally:
        await channel.close()
    body = webhook.requests[0].json
    assert body["truncatedAlerts"] == 1
    assert [a["labels"]["device"] for a in body["alerts"]] == ["sw-a"]  # the firing one is kept
    assert body["alerts"][0]["annotations"]["summary"] == "sw-a (Cẩm Phô) is not answering: timeout"
    assert list(body["wardwatch"]["alerts"]) == [body["alerts"][0]["fingerprint"]]


async def test_a_webhook_answering_500_gets_bounded_retries_while_email_still_goes_out(
    webhook: WebhookReceiver, smtp: SmtpReceiver
) -> None:
    webhook.fail_always(500)
    hook = open_channel("ops", WebhookChannel(type="webhook", url=webhook.url, retries=3, backoff=0.2))
    mail = open_channel("mail", email_cfg(smtp))
    hook_log, mail_log = Log(), Log()
    t0 = time.monotonic()
    try:
        hook_ok, mail_ok = await asyncio.gather(
            deliver(hook, dead_switch_notice(channel="ops"), record=hook_log),
            deliver(mail, dead_switch_notice(channel="mail"), record=mail_log),
        )
    finally:
        await hook.close()
        await mail.close()
    elapsed = time.monotonic() - t0

    assert hook_ok is False and mail_ok is True
    assert len(webhook.requests) == 4, "1 try + retries: 3, then it gives up"
    assert [(a.attempt, a.ok, a.status) for a in hook_log.attempts] == [(n, False, 500) for n in (1, 2, 3, 4)]
    assert all("500" in a.error for a in hook_log.attempts)
    gaps = [b - a for a, b in zip(hook_log.at, hook_log.at[1:], strict=False)]
    assert all(g >= want * 0.9 for g, want in zip(gaps, (0.2, 0.4, 0.8), strict=True)), gaps  # doubling backoff
    assert elapsed < 5
    # The email did not wait for the webhook to give up.
    assert [(a.attempt, a.ok) for a in mail_log.attempts] == [(1, True)]
    assert mail_log.at[0] < hook_log.at[-1]
    assert len(smtp.messages) == 1


async def test_webhook_4xx_is_not_retried_5xx_then_2xx_is_delivered_and_a_slow_one_times_out(
    webhook: WebhookReceiver,
) -> None:
    channel = open_channel("ops", WebhookChannel(type="webhook", url=webhook.url, retries=4, backoff=0.05,
                                                 timeout=0.5))
    try:
        webhook.fail_next(1, 400)
        log = Log()
        assert await deliver(channel, dead_switch_notice(), record=log) is False
        assert [(a.attempt, a.status) for a in log.attempts] == [(1, 400)], "a 400 will not pass by trying again"

        webhook.fail_next(2, 503)
        log = Log()
        assert await deliver(channel, dead_switch_notice(), record=log) is True
        tries = [(a.attempt, a.ok, a.status) for a in log.attempts]
        assert tries == [(1, False, 503), (2, False, 503), (3, True, None)]

        webhook.delay = 1.0  # longer than the channel's timeout
        log = Log()
        short = open_channel("slow", WebhookChannel(type="webhook", url=webhook.url, retries=1, backoff=0.05,
                                                    timeout=0.3))
        t0 = time.monotonic()
        assert await deliver(short, dead_switch_notice(), record=log) is False
        assert time.monotonic() - t0 < 2.0
        assert [(a.attempt, a.ok) for a in log.attempts] == [(1, False), (2, False)]
        assert all("no answer within 0.3 s" in a.error for a in log.attempts), log.attempts
        await short.close()
    finally:
        await channel.close()


async def test_deliver_stops_waiting_when_told_to_stop(webhook: WebhookReceiver) -> None:
    webhook.fail_always(502)
    channel = open_channel("ops", WebhookChannel(type="webhook", url=webhook.url, retries=5, backoff=60))
    stop = asyncio.Event()
    log = Log()
    try:
        task = asyncio.create_task(deliver(channel, dead_switch_notice(), record=log, stop=stop))
        await asyncio.to_thread(webhook.wait_for, 1)
        t0 = time.monotonic()
        stop.set()
        assert await asyncio.wait_for(task, 5) is False
        assert time.monotonic() - t0 < 1.0, "the 60 s backoff was cut short"
        assert len(log.attempts) == 1
    finally:
        await channel.close()


async def test_a_refused_connection_is_retried_and_recorded() -> None:
    from wardwatch.simulators.lab import free_port

    port = free_port()  # nobody listens there
    channel = open_channel("ops", WebhookChannel(type="webhook", url=f"http://127.0.0.1:{port}/", retries=1,
                                                 backoff=0.05))
    log = Log()
    try:
        assert await deliver(channel, dead_switch_notice(), record=log) is False
    finally:
        await channel.close()
    assert [(a.attempt, a.ok, a.status) for a in log.attempts] == [(1, False, None), (2, False, None)]
    assert all("Connect" in a.error or "refused" in a.error.lower() for a in log.attempts), log.attempts


# Telegram and Zalo ----------------------------------------------------------------------

TOKEN = "123456789:AAH-test_token"


async def test_telegram_sendmessage_reaches_the_bot_api_with_plain_vietnamese_text() -> None:
    with BotApiReceiver(TOKEN, limit=4096) as api:
        cfg = TelegramChannel(type="telegram", token=TOKEN, chat_id="-1001234567890", base_url=api.url)
        channel = open_channel("tg", cfg)
        try:
            assert await deliver(channel, dead_switch_notice(), record=Log())
        finally:
            await channel.close()
        [req] = api.requests
        assert req.path == f"/bot{TOKEN}/sendMessage" and req.method == "POST"
        assert set(req.json) == {"chat_id", "text", "disable_web_page_preview"}
        assert req.json["chat_id"] == "-1001234567890" and req.json["disable_web_page_preview"] is True
        msg = req.json["text"]
        lines = msg.splitlines()
        assert "Cẩm Phô" in lines[0] and "giờ Việt Nam" in lines[0]
        assert lines[1].startswith("⛔ CRITICAL sw-a: sw-a (Cẩm Phô) không phản hồi: timeout")  # firing first
        assert "từ 14:05 02/12/2026" in lines[1]
        assert "phía sau: 10 camera, 3 AP" in lines[1]
        assert "cấp bởi sw-core port 7" in lines[1]
        assert f"xác nhận: {EXTERNAL}/ack/" in lines[1]
        assert lines[2].startswith("✅ cam-99") and "kéo dài 25 phút" in lines[2]


@pytest.mark.parametrize(("kind", "limit"), [("telegram", 4096), ("zalo", 2000)])
async def test_an_over_long_notice_is_cut_within_the_limit(kind: str, limit: int) -> None:
    notice = many_alerts_notice(300)
    with BotApiReceiver(TOKEN, limit=limit, flavor=kind) as api:
        if kind == "telegram":
            cfg: TelegramChannel | ZaloChannel = TelegramChannel(type="telegram", token=TOKEN, chat_id="42",
                                                                 base_url=api.url)
        else:
            cfg = ZaloChannel(type="zalo", token=TOKEN, chat_id="e4ea2cd5189df1c3a88c", base_url=api.url)
        channel = open_channel(kind, cfg)
        log = Log()
        try:
            assert await deliver(channel, notice, record=log), log.attempts
        finally:
            await channel.close()
        [body] = api.messages  # the receiver refuses a text over its limit, as the real API does
        if kind == "zalo":
            assert set(body) == {"chat_id", "text"}
        msg = body["text"]
        assert len(msg) <= limit
        assert len(msg) > limit - 300, "the room is used, not wasted"
        lines = msg.splitlines()
        shown = [ln for ln in lines if ln.startswith("⚠ WARNING cam-phường-")]
        m = re.fullmatch(r"… và (\d+) cảnh báo khác", lines[-1])
        assert m, lines[-1]
        assert len(shown) + int(m.group(1)) == 300
        assert all("xác nhận: " in ln and ln.endswith("sig=0123456789abcdef") for ln in shown), "no line cut short"


async def test_telegram_429_retry_after_is_honoured_and_a_wrong_token_is_not_retried() -> None:
    with BotApiReceiver(TOKEN) as api:
        api.rate_limit_next(1, retry_after=1)
        good = open_channel("tg", TelegramChannel(type="telegram", token=TOKEN, chat_id="42", base_url=api.url,
                                                  retries=2, backoff=0.05))
        bad = open_channel("tg2", TelegramChannel(type="telegram", token="999:wrong", chat_id="42",
                                                  base_url=api.url, retries=3, backoff=0.05))
        try:
            log = Log()
            t0 = time.monotonic()
            assert await deliver(good, dead_switch_notice(), record=log)
            assert time.monotonic() - t0 >= 0.95, "waited Telegram's retry_after, not the 0.05 s backoff"
            assert [(a.attempt, a.ok, a.status) for a in log.attempts] == [(1, False, 429), (2, True, None)]
            assert "retry after" in log.attempts[0].error.lower()

            log = Log()
            assert await deliver(bad, dead_switch_notice(), record=log) is False
            assert [(a.attempt, a.status) for a in log.attempts] == [(1, 401)]
            assert "wrong" not in log.attempts[0].error, "the token never appears in the delivery log"
        finally:
            await good.close()
            await bad.close()
        assert len(api.messages) == 1


# Email ---------------------------------------------------------------------------------------


async def test_email_over_starttls_and_auth_is_read_back_with_its_vietnamese_intact(smtp: SmtpReceiver) -> None:
    channel = open_channel("mail", email_cfg(smtp))
    log = Log()
    try:
        assert await deliver(channel, dead_switch_notice(channel="mail"), record=log), log.attempts
    finally:
        await channel.close()
    [mail] = smtp.wait_for(1)
    assert mail.tls, "the message went over STARTTLS"
    assert mail.login == "alerts"
    assert mail.mail_from == "wardwatch@hoian.example"
    assert mail.rcpt_tos == ["kythuat@hoian.example", "trucban@hoian.example"]
    msg = mail.message
    subject = str(msg["Subject"])
    want = "[wardwatch] CRITICAL Cẩm Phô: sw-a không phản hồi: timeout (+13 thiết bị phía sau)"
    assert subject.startswith(want), subject
    assert "\n" not in subject
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    body = msg.get_content()
    assert "Phường/xã: Cẩm Phô" in body
    assert "Thiết bị: sw-a (switch)" in body
    assert "Từ lúc: 14:05 02/12/2026 (giờ Việt Nam)" in body
    assert "Lý do: Không trả lời kịp (timeout)" in body
    assert "Cấp nguồn/kết nối bởi: sw-core port 7" in body
    assert "Thiết bị phía sau (bị ẩn cảnh báo): 13 (10 camera, 3 AP)" in body
    assert "cam-00, cam-01" in body and "ap-0, ap-1, ap-2" in body
    assert f"{EXTERNAL}/ack/" in body
    assert "ĐÃ KHẮC PHỤC: Camera cam-99" in body and "Hết lúc: 14:30 02/12/2026" in body


async def test_email_refuses_to_send_in_clear_when_the_server_has_no_starttls() -> None:
    with SmtpReceiver(starttls=False, username=None) as clear:
        channel = open_channel("mail", email_cfg(clear, username=None, password=None, retries=3, backoff=0.05))
        log = Log()
        try:
            assert await deliver(channel, dead_switch_notice(), record=log) is False
        finally:
            await channel.close()
        assert len(log.attempts) == 1, "not retryable: the server will not grow STARTTLS"
        assert "STARTTLS" in log.attempts[0].error
        assert clear.messages == []


async def test_email_with_a_wrong_password_is_not_retried(smtp: SmtpReceiver) -> None:
    channel = open_channel("mail", email_cfg(smtp, password="sai", retries=3, backoff=0.05))
    log = Log()
    try:
        assert await deliver(channel, dead_switch_notice(), record=log) is False
    finally:
        await channel.close()
    assert [(a.attempt, a.status) for a in log.attempts] == [(1, 535)]
    assert "sai" not in log.attempts[0].error
    assert smtp.messages == [] and smtp.auth_failures >= 1  # aiosmtplib tries PLAIN, then LOGIN


# MQTT --------------------------------------------------------------------------------------


def _client(port: int, name: str) -> mqtt.Client:
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2,
                         client_id=f"test-{name}-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    connected = threading.Event()
    client.on_connect = lambda *args: connected.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    assert connected.wait(5), f"{name} could not connect to Mosquitto"
    return client


@pytest.mark.services
async def test_mqtt_channel_publishes_one_message_per_alert_on_the_ward_severity_topic(mosquitto: Service) -> None:
    ward = f"w{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, int, dict[str, Any]]] = []
    sub = _client(mosquitto.port, "sub")
    subscribed = threading.Event()
    sub.on_message = lambda c, u, m: got.append((m.topic, m.qos, json.loads(m.payload)))
    sub.on_subscribe = lambda *args: subscribed.set()
    sub.subscribe(f"wardwatch/v1/alerts/{ward}/#", qos=1)
    assert subscribed.wait(5)
    pub = _client(mosquitto.port, "pub")
    online = {"up": True}

    def publish(topic: str, payload: bytes) -> bool:
        if not online["up"]:
            return False
        return pub.publish(topic, payload, qos=1).rc == mqtt.MQTT_ERR_SUCCESS

    channel = open_channel("bus", MqttChannel(type="mqtt", retries=1, backoff=0.05), publish=publish)
    notice = dead_switch_notice(ward=ward)
    notice.alerts[0].alert.labels["severity"] = "warning"
    try:
        log = Log()
        assert await deliver(channel, notice, record=log)
        wait_for(lambda: len(got) >= 2, timeout=5, interval=0.05, what="2 alert messages")
        by_topic = {t: (q, p) for t, q, p in got}
        assert set(by_topic) == {wire.alerts_topic(ward, "critical"), wire.alerts_topic(ward, "warning")}
        qos, root = by_topic[wire.alerts_topic(ward, "critical")]
        assert qos == 1
        assert root["schema"] == 1
        assert ALERT_KEYS <= set(root)
        assert root["labels"]["device"] == "sw-a" and root["status"] == "firing"
        assert root["wardwatch"]["suppressed_count"] == 13 and root["wardwatch"]["ward_name"] == "Cẩm Phô"
        assert root["wardwatch"]["kind"] == "firing" and root["wardwatch"]["ack_url"].startswith(EXTERNAL)
        _, cam = by_topic[wire.alerts_topic(ward, "warning")]
        assert cam["status"] == "resolved" and cam["labels"]["device"] == "cam-99"

        online["up"] = False  # the collector lost its broker: retryable, and recorded
        log = Log()
        assert await deliver(channel, notice, record=log) is False
        assert [(a.attempt, a.ok) for a in log.attempts] == [(1, False), (2, False)]
        assert "not connected" in log.attempts[0].error
    finally:
        await channel.close()
        for c in (sub, pub):
            c.disconnect()
            c.loop_stop()


def test_mqtt_channel_needs_the_collectors_publish() -> None:
    with pytest.raises(ValueError, match="publish"):
        open_channel("bus", MqttChannel(type="mqtt"))


# text.render (pure logic) ----------------------------------------------------------------


@pytest.mark.parametrize("language", ["vi", "en"])
def test_render_respects_every_limit_exactly(language: str) -> None:
    notice = many_alerts_notice(300, language=language)
    more = re.compile(r"… và (\d+) cảnh báo khác" if language == "vi" else r"… and (\d+) more")
    full = text.render(notice, limit=10**6)
    assert len(full.splitlines()) == 301 and not more.search(full)
    for limit in [1, 10, 60, 100, 150, 300, 500, 999, 1000, 2000, 2001, 4095, 4096, 10_000]:
        out = text.render(notice, limit=limit)
        assert len(out) <= limit, (limit, len(out))
        lines = out.splitlines()
        if limit >= 300:
            shown = sum(1 for ln in lines if "cam-phường-" in ln)
            m = more.fullmatch(lines[-1])
            assert m, lines[-1]
            assert shown + int(m.group(1)) == 300, limit


def test_render_puts_firing_first_and_one_line_per_alert_in_english() -> None:
    out = text.render(dead_switch_notice(language="en"), limit=4096)
    head, first, second = out.splitlines()
    assert head.startswith("[wardwatch] Alert — Cẩm Phô (1 firing, 1 resolved)") and "Vietnam time" in head
    assert first.startswith("⛔ CRITICAL sw-a: sw-a (Cẩm Phô) is not answering: timeout")
    assert "behind it: 10 cameras, 3 APs" in first and "since 14:05 02/12/2026" in first
    assert second.startswith("✅ cam-99") and "lasted 25 min" in second
    assert "acknowledge:" not in second


def test_render_counts_in_utf16_units_when_the_text_has_emoji() -> None:
    notice = many_alerts_notice(50)
    for na in notice.alerts:
        na.alert.summary["vi"] += " 📷📷"  # two UTF-16 units each
    out = text.render(notice, limit=2000)
    assert text.units(out) <= 2000 and len(out.encode("utf-16-le")) // 2 <= 2000


def test_acknowledged_alerts_show_who_not_the_link_and_subject_is_one_line() -> None:
    notice = dead_switch_notice()
    notice.alerts[1].alert.acked_by = "Nguyễn Văn An"
    out = text.render(notice, limit=4096)
    assert "đã xác nhận bởi Nguyễn Văn An" in out and "xác nhận: http" not in out
    resolved = Notice(kind="resolved", channel="mail", group_key="0:cam-pho", ward="cam-pho", ward_name="Cẩm Phô",
                      alerts=[notice.alerts[0]], external_url=EXTERNAL)
    assert text.subject(resolved) == "[wardwatch] ĐÃ KHẮC PHỤC Cẩm Phô: Camera cam-99 lỗi: rtsp_failed"
    many = many_alerts_notice(300)
    subj = text.subject(many)
    assert "\n" not in subj and subj.endswith("và 299 cảnh báo khác") and len(subj) <= 250
