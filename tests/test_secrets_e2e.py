"""Issue 14's acceptance test "Secrets never show": one full run on real services with
known, distinctive secret values, then a grep of everything a person or a database could
see for them.

The run: net-snmp's snmpd (a v2c community and an SNMPv3 SHA/AES user), the ONVIF camera
simulator (its password; one camera answers stream and snapshot URIs with
``admin:password@`` in them, as some firmware does), Mosquitto (the agent and the collector
log in with a password), an InfluxDB of its own with auth on and its request log kept (the
collector logs in with a user and password), an agent polling seven devices, a collector
with the web API (its token) and the alert engine (an ``ack_secret``; an email channel to
aiosmtpd with a password, a Telegram channel to a local fake Bot API with its token, a
second Telegram channel whose token the fake refuses, and a Telegram and a webhook channel
(with a bearer token) to a peer that refuses and quotes the token back in its error).
Failures on purpose: a switch polled with the wrong community, one with the wrong SNMPv3
keys, a camera polled with the wrong password (they alert, and the alerts are delivered),
a garbage payload (dead-lettered), refused deliveries.

Searched, for each secret and its obvious encodings (base64, base64 of ``user:pass``,
percent-encoded): the agent's and the collector's logs (debug level), the output of
``wardwatch-agent check``, ``discover``, ``wardwatch-collector report``, ``config --show``
of both sides and of configs that are refused (credentials in a URL, a short SNMPv3 key),
the dead-letter file, the alert store (its SQLite rows and its files' bytes), the alert
API's answers and the dashboard's pages, the messages the channels received, InfluxDB's request log, and InfluxDB:
every measurement's rows, tag values, field keys and series.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import paho.mqtt.client as mqtt
import pytest
import yaml

from tests.pipeline import Collector
from tests.receivers import BotApiReceiver, SmtpReceiver, _HttpReceiver
from tests.util import wait_for, write_yaml
from wardwatch.simulators.lab import (
    InfluxService,
    ServiceError,
    find_binary,
    script,
    start_influxdb,
    start_mosquitto,
    start_snmpd,
)

pytestmark = pytest.mark.services

TAG = uuid.uuid4().hex[:10]
MQTT_USER = "ward-agent"
SECRETS = {
    "community": f"Cmty{TAG}x",
    "wrong_community": f"WrongCmty{TAG}",
    "v3_auth": f"V3auth{TAG}k",
    "v3_priv": f"V3priv{TAG}k",
    "wrong_v3": f"WrongV3{TAG}k",
    "onvif": f"Onvif{TAG}pw",
    "wrong_onvif": f"BadOnvif{TAG}",
    "mqtt": f"mq+tt/pw={TAG}",  # percent-encoding changes it
    "influx": f"in flux&{TAG}",
    "smtp": f"mật-khẩu-{TAG}",
    "tg_token": f"7001{TAG[:6]}:TgTok{TAG}",
    "tg_wrong": f"7002{TAG[:6]}:TgBad{TAG}",
    "hook_token": f"HookTok-{TAG}",
    "http_token": f"HttpTok-{TAG}-0123456789",
    "ack_secret": f"AckSecret-{TAG}-abcdef",
    "refused_url": f"UrlPw{TAG}",
    "short_key": "Sk7" + TAG[:4],  # 7 characters: refused as an SNMPv3 key
}
USERS = {"onvif": "admin", "mqtt": MQTT_USER, "influx": "wardwatch", "smtp": "alerts", "wrong_onvif": "admin",
         "refused_url": "admin"}
INTERVAL = 2.0


def forms(name: str, value: str) -> set[str]:
    """The secret and the encodings it could leak in."""
    out = {value, quote(value, safe=""), quote_plus(value), base64.b64encode(value.encode()).decode()}
    if name in USERS:
        out.add(base64.b64encode(f"{USERS[name]}:{value}".encode()).decode())
    return out


NEEDLES = {form: name for name, value in SECRETS.items() for form in forms(name, value)}


def leaks(text: str | bytes) -> list[str]:
    """The secrets (by name) found in ``text``."""
    hay = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return sorted({name for needle, name in NEEDLES.items() if needle in hay})


def run(*argv: str, expect: int | None = None) -> str:
    """A wardwatch command's stdout and stderr together."""
    done = subprocess.run([find_binary(argv[0]), *argv[1:]], capture_output=True, timeout=60, check=False)
    text = done.stdout.decode() + done.stderr.decode()
    if expect is not None:
        assert done.returncode == expect, f"{argv}: exit {done.returncode}\n{text}"
    return text


def http(url: str, token: str) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def rules_file(path: Path) -> Path:
    """The shipped device_down and camera_not_ok rules with ``for`` cut to 1 s."""
    shipped = Path(__file__).parent.parent / "collector" / "alerts" / "rules.yaml"
    doc = yaml.safe_load(shipped.read_text(encoding="utf-8"))
    rules = [dict(r, **{"for": "1s"}) for r in doc["rules"] if r["name"] in ("device_down", "camera_not_ok")]
    return write_yaml(path, {"rules": rules})


def agent_doc(tmp: Path, *, broker: int, snmpd: int, cams: list[dict[str, Any]], secret_dir: Path) -> dict[str, Any]:
    (secret_dir / "priv.key").write_text(SECRETS["v3_priv"] + "\n")
    poll = {"interval": f"{INTERVAL:g}s", "timeout": "0.5s", "retries": 0, "icmp": False}
    return {
        "agent": {"id": f"agent-{TAG}", "ward": "cam-pho"},
        "mqtt": {"host": "127.0.0.1", "port": broker, "keepalive": "5s", "username": MQTT_USER,
                 "password": "${WW_TEST_MQTT_PASSWORD}"},
        "outbox": {"path": str(tmp / "outbox.db")},
        "self_interval": "5s",
        "auth": {
            "v2": {"snmp": {"version": "2c", "community": SECRETS["community"]}},
            "v2-wrong": {"snmp": {"version": "2c", "community": SECRETS["wrong_community"]}},
            "v3": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA", "auth_key": SECRETS["v3_auth"],
                            "priv_protocol": "AES", "priv_key_file": str(secret_dir / "priv.key")}},
            "v3-wrong": {"snmp": {"version": "3", "user": "mon", "auth_protocol": "SHA",
                                  "auth_key": SECRETS["wrong_v3"], "priv_protocol": "AES",
                                  "priv_key": SECRETS["wrong_v3"]}},
            "cam": {"onvif": {"username": "admin", "password": SECRETS["onvif"]}},
            "cam-wrong": {"onvif": {"username": "admin", "password": SECRETS["wrong_onvif"]}},
        },
        "devices": [
            {"id": "sw-v2", "kind": "switch", "host": "127.0.0.1", "port": snmpd, "auth": "v2", **poll},
            {"id": "sw-v3", "kind": "switch", "host": "127.0.0.1", "port": snmpd, "auth": "v3", **poll},
            {"id": "sw-wrong", "kind": "switch", "host": "127.0.0.1", "port": snmpd, "auth": "v2-wrong", **poll},
            {"id": "sw-v3-wrong", "kind": "switch", "host": "127.0.0.1", "port": snmpd, "auth": "v3-wrong", **poll},
            *({"id": dev, "kind": "camera", "host": cam["host"], "port": cam["onvif_port"], "auth": auth,
               **poll, "timeout": "1.5s", "camera": {"events": False}}
              for (dev, auth), cam in zip((("cam-ok", "cam"), ("cam-wrong", "cam-wrong"), ("cam-uri", "cam")), cams,
                                          strict=True)),
        ],
    }  # fmt: skip


class AuthInflux(InfluxService):
    """influxd 1.6 with ``auth-enabled`` and its HTTP request log on; queried as the admin
    user the test creates (the collector's user)."""

    user = USERS["influx"]

    def query(self, q: str, *, db: str | None = None, epoch: str | None = None) -> dict[str, Any]:
        params = {"q": q, **({"db": db} if db else {}), **({"epoch": epoch} if epoch else {})}
        basic = base64.b64encode(f"{self.user}:{SECRETS['influx']}".encode()).decode()
        req = urllib.request.Request(f"{self.url}/query", data=urllib.parse.urlencode(params).encode(),
                                     method="POST", headers={"Authorization": f"Basic {basic}",
                                                             "Content-Type": "application/x-www-form-urlencoded"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                result: dict[str, Any] = json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise ServiceError(f"influxdb: {q!r}: HTTP {exc.code}: {exc.read()!r}") from exc
        errors = [r["error"] for r in result.get("results", []) if "error" in r]
        if errors or "error" in result:
            raise ServiceError(f"influxdb: {q!r}: {errors or result['error']}")
        return result


def start_influx_with_auth(run_dir: Path) -> AuthInflux:
    service = start_influxdb(run_dir, auth=True, http_log=True, cls=AuthInflux)
    assert isinstance(service, AuthInflux)
    # The first user may be made without credentials; after it, nothing answers without them.
    user = urllib.parse.urlencode({"q": f"CREATE USER {service.user} WITH PASSWORD "
                                        f"'{SECRETS['influx']}' WITH ALL PRIVILEGES"})  # fmt: skip
    with urllib.request.urlopen(urllib.request.Request(f"{service.url}/query", data=user.encode()), timeout=10):
        pass
    return service


class Echoing(_HttpReceiver):
    """A peer that refuses every request and quotes it back: the request line (a bot token in
    the path) and the Authorization header, as some proxies and APIs do in their errors."""

    async def handle(self, request: Any, body: bytes, data: Any) -> tuple[int, Any]:
        quoted = f"{request.method} {request.path_qs} with {request.headers.get('Authorization', '-')}"
        return 403, {"ok": False, "error_code": 403, "description": f"Forbidden: {quoted}"}


@pytest.fixture
def stack() -> Iterator[ExitStack]:
    with ExitStack() as s:
        yield s


@pytest.mark.timeout(180)
def test_no_secret_shows_anywhere(tmp_path: Path, stack: ExitStack) -> None:
    found: dict[str, list[str]] = {}  # where -> the secrets seen there

    def grep(where: str, text: str | bytes) -> None:
        if hits := leaks(text):
            found[where] = hits

    env = {"WW_TEST_MQTT_PASSWORD": SECRETS["mqtt"]}
    secret_dir = tmp_path / "secrets"
    secret_dir.mkdir()

    # The peers.
    broker = start_mosquitto(tmp_path / "broker")
    stack.callback(broker.stop)
    snmpd = start_snmpd(tmp_path / "snmpd", community=SECRETS["community"], v3_auth=SECRETS["v3_auth"],
                        v3_priv=SECRETS["v3_priv"], sys_name="sw-secret")  # fmt: skip
    stack.callback(snmpd.stop)
    listing = tmp_path / "cameras.json"
    camsim = script("wardwatch-sim", ["cameras", "--count", "3", "--brand", "hikvision", "--control-port", "0",
                                      "--user", "admin", "--password", SECRETS["onvif"], "--output", str(listing)],
                    run_dir=tmp_path / "camsim")  # fmt: skip
    camsim.start()
    stack.callback(camsim.stop)
    def listed() -> list[dict[str, Any]]:
        try:
            found: list[dict[str, Any]] = json.loads(listing.read_text())["cameras"]
        except (OSError, ValueError, KeyError):
            return []
        return found

    cams = wait_for(listed, timeout=30, interval=0.1, what=lambda: f"camera listing\n{camsim.log_tail()}")
    # The third camera's firmware writes its login into the URIs it answers (some do).
    uri_cam = cams[2]
    userinfo = f"admin:{quote(SECRETS['onvif'], safe='')}@"
    faults = {"stream_uri": f"rtsp://{userinfo}{uri_cam['host']}:{uri_cam['rtsp_port']}/no-such-stream",
              "snapshot_uri": f"http://{userinfo}{uri_cam['host']}:{uri_cam['onvif_port']}/no-such-snapshot.jpg"}
    control = json.loads(listing.read_text())["control_url"]
    req = urllib.request.Request(f"{control}/cameras/{uri_cam['id']}/faults", data=json.dumps(faults).encode(),
                                 method="POST", headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200
    tg = stack.enter_context(BotApiReceiver(SECRETS["tg_token"]))
    mail = stack.enter_context(SmtpReceiver(username="alerts", password=SECRETS["smtp"]))
    echo = stack.enter_context(Echoing())
    influx = start_influx_with_auth(tmp_path)
    stack.callback(influx.stop)
    with pytest.raises(urllib.error.HTTPError) as no_login:  # auth is on
        urllib.request.urlopen(f"{influx.url}/query?q=SHOW+DATABASES", timeout=5)
    assert no_login.value.code == 401
    database = f"t_{uuid.uuid4().hex[:12]}"
    influx.create_database(database)

    # The collector: web API, alert engine, email and two Telegram channels.
    (secret_dir / "http.token").write_text(SECRETS["http_token"])
    channels = {
        "tg": {"type": "telegram", "token": SECRETS["tg_token"], "chat_id": "-100777", "base_url": tg.url},
        "tg-wrong": {"type": "telegram", "token": SECRETS["tg_wrong"], "chat_id": "-100778", "base_url": tg.url,
                     "retries": 0},
        "tg-echo": {"type": "telegram", "token": SECRETS["tg_wrong"], "chat_id": "-100779", "base_url": echo.url,
                    "retries": 0},
        "hook-echo": {"type": "webhook", "url": f"{echo.url}/hook", "bearer_token": SECRETS["hook_token"],
                      "retries": 0},
        "mail": {"type": "email", "host": "127.0.0.1", "port": mail.port, "starttls": True,
                 "ca_file": str(mail.cert_file), "username": "alerts", "password": SECRETS["smtp"],
                 "from": "wardwatch@hoian.example", "to": ["kythuat@hoian.example"]},
    }  # fmt: skip
    collector = Collector(
        tmp_path, mqtt_port=broker.port, influx_url=influx.url, database=database,
        mqtt={"username": "collector", "password": "${WW_TEST_MQTT_PASSWORD}"},
        influx={"username": "wardwatch", "password": SECRETS["influx"]},
        http={"token_file": str(secret_dir / "http.token")},
        alerts={"rules": str(rules_file(tmp_path / "rules.yaml")), "state": str(tmp_path / "alerts.db"),
                "ack_secret": SECRETS["ack_secret"], "language": "en", "channels": channels,
                "routes": [{"match": {}, "channels": ["tg", "tg-wrong", "tg-echo", "hook-echo", "mail"],
                            "group_wait": "0.5s"}]},
    )  # fmt: skip
    doc = yaml.safe_load(collector.config.read_text())
    del doc["http"]["token"]  # given by token_file instead
    write_yaml(collector.config, doc)
    collector.token = SECRETS["http_token"]
    collector.service.env = env
    stack.callback(collector.service.stop)
    collector.start()

    agent_cfg = write_yaml(tmp_path / "agent.yaml",
                           agent_doc(tmp_path, broker=broker.port, snmpd=snmpd.port, cams=cams, secret_dir=secret_dir))
    agent = script("wardwatch-agent", ["run", "-c", str(agent_cfg), "--log-level", "DEBUG"], run_dir=tmp_path / "agent")
    agent.env = env
    agent.start()
    stack.callback(agent.stop)

    # A garbage payload on an agent's topic: dead-lettered.
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"garbage-{TAG}")
    client.username_pw_set(MQTT_USER, SECRETS["mqtt"])
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(f"wardwatch/v1/cam-pho/agent-{TAG}/readings", b"{not json", qos=1).wait_for_publish(5)
    client.loop_stop()
    client.disconnect()

    # What must happen: readings of the good devices stored, both failures alerted and the
    # alerts delivered (Telegram and email), the refused delivery recorded, the dead letter.
    def stored() -> set[str]:
        rows = influx.points("SELECT last(up) AS up FROM device_status GROUP BY device", db=database)
        return {r["device"] for r in rows}

    wait_for(lambda: stored() >= {"sw-v2", "sw-v3", "sw-wrong", "sw-v3-wrong", "cam-ok", "cam-wrong", "cam-uri"},
             timeout=30,
             interval=0.5, what=lambda: f"every device's status in InfluxDB: {stored()}\n{agent.log_tail(30)}")
    # The last poll's verdicts: on a loaded machine one v3 poll may time out, the next answers.
    want = {"sw-v2": 1, "sw-v3": 1, "sw-wrong": 0, "sw-v3-wrong": 0}

    def ups() -> dict[str, int]:
        return {r["device"]: r["up"] for r in influx.points(
            "SELECT last(up) AS up FROM device_status GROUP BY device", db=database)}  # fmt: skip

    wait_for(lambda: {d: ups().get(d) for d in want} == want, timeout=30, interval=0.5,
             what=lambda: f"the switches' verdicts {want}; got {ups()}")

    def alerted() -> set[str]:
        return {d for m in tg.messages for d in ("sw-wrong", "cam-wrong") if d in m["text"]}

    wait_for(lambda: alerted() == {"sw-wrong", "cam-wrong"}, timeout=30, interval=0.2,
             what=lambda: f"both failures on Telegram: {alerted()}\n{collector.service.log_tail(30)}")
    mail.wait_for(1, timeout=15)

    def refused() -> list[dict[str, Any]]:
        status, body = http(f"http://127.0.0.1:{collector.http_port}/api/v1/alerts/deliveries", collector.token)
        assert status == 200, body
        rows: list[dict[str, Any]] = json.loads(body)["deliveries"]
        return [r for r in rows if r.get("ok") is False]

    wait_for(lambda: {r["channel"] for r in refused()} >= {"tg-wrong", "tg-echo", "hook-echo"}, timeout=15,
             interval=0.3, what=lambda: f"the refused deliveries in the deliveries API: {refused()}")
    assert len(echo.requests) >= 2 and any(SECRETS["hook_token"] in str(r.headers) for r in echo.requests)
    wait_for(collector.dead_letters, timeout=10, interval=0.2, what="the garbage payload dead-lettered")

    # The web API with and without its token; the answers and the deliveries.
    base = f"http://127.0.0.1:{collector.http_port}"
    for path in ("/healthz", "/api/v1/alerts", "/api/v1/alerts/history", "/api/v1/alerts/deliveries"):
        status, body = http(base + path, collector.token)
        assert status == 200, (path, status, body)
        grep(f"GET {path}", body)
    assert http(base + "/api/v1/alerts", SECRETS["tg_token"])[0] == 401
    # The dashboard: a failed login (another secret as the token), a good one, the pages.
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    for token, want in ((SECRETS["hook_token"], 401), (SECRETS["http_token"], 200)):
        form = urllib.parse.urlencode({"token": token, "next": "/"}).encode()
        try:
            with browser.open(urllib.request.Request(base + "/login", data=form), timeout=5) as resp:
                got = resp.status
        except urllib.error.HTTPError as exc:
            got = exc.code
        assert got == want, (token == SECRETS["http_token"], got)
    for path in ("/", "/ward/cam-pho", "/device/cam-pho/cam-uri", "/device/cam-pho/sw-v3-wrong", "/alerts"):
        with browser.open(base + path, timeout=10) as resp:
            assert resp.status == 200 and resp.url.endswith(path), (path, resp.url)
            grep(f"page {path}", resp.read())

    # The commands.
    agent_env_cfg = tmp_path / "agent-show.yaml"  # ${ENV} expanded by the test: commands run without the env
    shown_doc = yaml.safe_load(agent_cfg.read_text())
    shown_doc["mqtt"]["password"] = SECRETS["mqtt"]
    write_yaml(agent_env_cfg, shown_doc)
    collector_show_cfg = tmp_path / "collector-show.yaml"
    cdoc = yaml.safe_load(collector.config.read_text())
    cdoc["mqtt"]["password"] = SECRETS["mqtt"]
    write_yaml(collector_show_cfg, cdoc)
    check_out = run("wardwatch-agent", "check", "-c", str(agent_env_cfg), "--log-level", "DEBUG", expect=1)
    assert "sw-wrong" in check_out and "cam-wrong" in check_out and "auth" in check_out, check_out
    grep("wardwatch-agent check", check_out)
    show = run("wardwatch-agent", "config", "--show", "-c", str(agent_env_cfg), expect=0)
    assert show.count("***") >= 6 and "(from priv_key_file)" in show, show
    grep("wardwatch-agent config --show", show)
    cshow = run("wardwatch-collector", "config", "--show", "-c", str(collector_show_cfg), expect=0)
    assert cshow.count("***") >= 6 and "(from token_file)" in cshow, cshow
    grep("wardwatch-collector config --show", cshow)
    found_out = run("wardwatch-agent", "discover", "-c", str(agent_env_cfg), "--cidr", "127.0.0.1/32",
                    "--port", str(snmpd.port), "--auth", "v2-wrong", "--auth", "v2", "--timeout", "0.5")
    assert "127.0.0.1" in found_out, found_out
    grep("wardwatch-agent discover", found_out)

    now = datetime.now(UTC)
    report = run("wardwatch-collector", "report", "uptime", "-c", str(collector_show_cfg), "--from",
                 (now - timedelta(minutes=10)).isoformat(timespec="seconds"), "--to",
                 (now + timedelta(minutes=1)).isoformat(timespec="seconds"), "--format", "json", "--log-level",
                 "DEBUG", expect=0)  # fmt: skip
    assert "sw-v2" in report, report
    grep("wardwatch-collector report uptime", report)

    # Refused configs: the error names the key and points at the right one, never the value.
    bad = dict(cdoc, influx=dict(cdoc["influx"], url=f"http://admin:{SECRETS['refused_url']}@127.0.0.1:8086"))
    out = run("wardwatch-collector", "config", "-c", str(write_yaml(tmp_path / "bad-url.yaml", bad)), expect=2)
    assert "influx.url: credentials in the URL are not allowed; use influx.username and influx.password" in out, out
    grep("refused influx.url", out)
    hook = dict(cdoc["alerts"], channels={"h": {"type": "webhook", "url": f"http://u:{SECRETS['refused_url']}@x.test/"}},
                routes=[])  # fmt: skip
    bad_hook = write_yaml(tmp_path / "bad-hook.yaml", dict(cdoc, alerts=hook))
    out = run("wardwatch-collector", "config", "-c", str(bad_hook), expect=2)
    assert "alerts.channels.h.url: credentials in the URL are not allowed; use the channel's bearer_token" in out, out
    grep("refused webhook url", out)
    short = yaml.safe_load(agent_env_cfg.read_text())
    short["auth"]["v3"]["snmp"]["auth_key"] = SECRETS["short_key"]
    out = run("wardwatch-agent", "config", "-c", str(write_yaml(tmp_path / "short.yaml", short)), expect=2)
    assert "auth.v3.snmp" in out and "at least 8 characters" in out, out
    grep("refused short v3 key", out)

    # Everything the run left behind, after its processes have stopped (logs flushed).
    agent.stop()
    collector.service.stop()
    grep("agent log", agent.log_path.read_bytes())
    grep("collector log", collector.service.log_path.read_bytes())
    influx_log = influx.log_path.read_bytes()
    assert b"/write" in influx_log, "InfluxDB logged its requests"
    grep("InfluxDB's request log", influx_log)
    assert b"DEBUG" in agent.log_path.read_bytes(), "the agent logged at debug level"
    grep("dead-letter file", collector.dead_letter.read_bytes())
    for f in tmp_path.glob("alerts.db*"):
        grep(f"alert store file {f.name}", f.read_bytes())
    db = sqlite3.connect(tmp_path / "alerts.db")
    try:
        tables = [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        assert tables, "the alert store has tables"
        for table in tables:
            rows = db.execute(f'SELECT * FROM "{table}"').fetchall()  # names from sqlite_master
            grep(f"alert store table {table}", repr(rows))
    finally:
        db.close()
    for i, m in enumerate(tg.messages):
        grep(f"telegram message {i}", json.dumps(m, ensure_ascii=False))
    for i, msg in enumerate(mail.messages):
        grep(f"email {i}", msg.message.as_string())

    measurements = [v[0] for s in influx.query("SHOW MEASUREMENTS", db=database)["results"][0]["series"]
                    for v in s["values"]]  # fmt: skip
    assert {"device_status", "alert"} <= set(measurements), measurements
    for m in measurements:
        grep(f"influx SELECT * FROM {m}", json.dumps(influx.query(f'SELECT * FROM "{m}"', db=database)))
    grep("influx SHOW TAG VALUES", json.dumps(influx.query('SHOW TAG VALUES WITH KEY =~ /.*/', db=database)))
    grep("influx SHOW FIELD KEYS", json.dumps(influx.query("SHOW FIELD KEYS", db=database)))
    grep("influx SHOW SERIES", json.dumps(influx.query("SHOW SERIES", db=database)))

    # The grep can find: the secrets are in the configs it read, and one grep proves it.
    assert leaks(agent_cfg.read_text()) and leaks(collector_show_cfg.read_text())
    assert not found, "secrets seen:\n" + "\n".join(f"  {where}: {names}" for where, names in found.items())
