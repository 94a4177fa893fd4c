"""The alert state file (collector/alerts/store.py), the signed acknowledgement links and the
maintenance window look-ups: what a restart keeps, what the history answers, what is pruned,
and what an operator reads when the file cannot be used."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from wardwatch.collector.alerts import links, maintenance
from wardwatch.collector.alerts.config import MaintenanceWindow
from wardwatch.collector.alerts.model import Alert, Attempt, Behind, Sent, Silence, fingerprint
from wardwatch.collector.alerts.store import AlertStore, StoreError

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
T0 = 1_780_000_000_000


def make_alert(device: str = "sw-core", *, ward: str = "cam-pho", rule: str = "device_down", **kw: object) -> Alert:
    labels = {"alertname": rule, "ward": ward, "device": device, "kind": "switch", "severity": "critical"}
    fields: dict[str, object] = {
        "fingerprint": fingerprint(labels),
        "rule": rule,
        "labels": labels,
        "state": "firing",
        "started_ms": T0,
        "updated_ms": T0 + 60_000,
    }
    fields.update(kw)
    return Alert(**fields)  # type: ignore[arg-type]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[AlertStore]:
    s = AlertStore(tmp_path / "state" / "alerts.db")
    s.open()
    yield s
    s.close()


def reopen(store: AlertStore) -> AlertStore:
    store.close()
    again = AlertStore(store.path)
    again.open()
    return again


def test_every_alert_field_survives_a_restart(store: AlertStore) -> None:
    full = make_alert(
        fired_ms=T0 + 60_000,
        ended_ms=T0 + 600_000,
        state="resolved",
        summary={"vi": "Thiết bị sw-core ở Cẩm Phô không phản hồi", "en": "sw-core in Cẩm Phô is down"},
        reason="no answer to ICMP or SNMP",
        value=0.0,
        suppressed_by="agent:cam-pho-1",
        silenced_by="maintenance",
        behind=[Behind(device="cam-01", kind="camera"), Behind(device="ap-02", kind="ap")],
        acked_by="Nguyễn Văn A",
        acked_ms=T0 + 120_000,
        ack_comment="đang đến / on my way",
        live=False,
    )
    other = make_alert(
        "cam-07",
        value="video loss",
        labels={
            "alertname": "camera_not_ok",
            "ward": "minh-an",
            "device": "cam-07",
            "kind": "camera",
            "severity": "warning",
            "if_name": "Gi0/7",
        },
    )
    plain = make_alert("ap-03", state="pending", value=None)
    for a in (full, other, plain):
        store.save_alert(a)
    store = reopen(store)
    got = {a.fingerprint: a for a in store.load_alerts()}
    assert got == {a.fingerprint: a for a in (full, other, plain)}
    assert isinstance(got[full.fingerprint].value, float) and got[other.fingerprint].value == "video loss"


def test_save_is_an_upsert_and_delete_takes_the_ledger_with_it(store: AlertStore) -> None:
    a = make_alert()
    store.save_alert(a)
    a.state, a.fired_ms = "resolved", T0 + 1
    store.save_alert(a)
    b = make_alert("sw-2")
    store.save_alert(b)
    for fp in (a.fingerprint, b.fingerprint):
        store.save_sent(Sent(fingerprint=fp, channel="ops", firing_ms=T0))
    store.save_sent(Sent(fingerprint=a.fingerprint, channel="tg", firing_ms=T0, escalation=True))
    assert [x.state for x in store.load_alerts() if x.fingerprint == a.fingerprint] == ["resolved"]
    store.delete_alert(a.fingerprint)
    store = reopen(store)
    assert [x.fingerprint for x in store.load_alerts()] == [b.fingerprint]
    assert set(store.sent()) == {(b.fingerprint, "ops")}


def test_the_pairing_ledger_survives_a_restart(store: AlertStore) -> None:
    a = make_alert()
    sent = Sent(fingerprint=a.fingerprint, channel="ops", firing_ms=T0, last_ms=T0 + 5, escalation=True)
    store.save_sent(sent)
    store.save_sent(Sent(fingerprint=a.fingerprint, channel="mail", firing_ms=T0, resolved_ms=T0 + 9))
    sent.last_ms = T0 + 99
    store.save_sent(sent)
    store = reopen(store)
    ledger = store.sent()
    assert ledger[(a.fingerprint, "ops")] == sent
    assert ledger[(a.fingerprint, "mail")].resolved_ms == T0 + 9
    assert ledger[(a.fingerprint, "mail")].escalation is False


def test_history_newest_first_with_filters(store: AlertStore) -> None:
    down = make_alert(behind=[Behind("cam-1", "camera")], summary={"vi": "sập", "en": "down"}, reason="timeout")
    cam = make_alert("cam-9", ward="minh-an", rule="camera_not_ok", silenced_by="sil-1")
    store.add_history(down, "pending", T0)
    store.add_history(down, "firing", T0 + 60_000)
    store.add_history(cam, "silenced", T0 + 60_000)
    store.add_history(down, "acknowledged", T0 + 120_000)
    store.add_history(down, "resolved", T0 + 300_000)
    store = reopen(store)
    rows = store.history()
    assert [(r["time"], r["state"]) for r in rows] == [
        (T0 + 300_000, "resolved"),
        (T0 + 120_000, "acknowledged"),
        (T0 + 60_000, "silenced"),  # same time: the later write first
        (T0 + 60_000, "firing"),
        (T0, "pending"),
    ]
    first = rows[-1]
    assert first == {
        "time": T0,
        "state": "pending",
        "fingerprint": down.fingerprint,
        "alertname": "device_down",
        "ward": "cam-pho",
        "device": "sw-core",
        "kind": "switch",
        "severity": "critical",
        "summary": {"vi": "sập", "en": "down"},
        "reason": "timeout",
        "suppressed_count": 1,
        "silenced_by": None,
        "suppressed_by": None,
    }
    assert [r["state"] for r in store.history(ward="minh-an")] == ["silenced"]
    assert rows[2]["silenced_by"] == "sil-1"
    window = store.history(since_ms=T0 + 60_000, until_ms=T0 + 300_000)  # since inclusive, until exclusive
    assert [r["state"] for r in window] == ["acknowledged", "silenced", "firing"]
    assert [r["state"] for r in store.history(limit=2)] == ["resolved", "acknowledged"]
    with pytest.raises(ValueError, match="history state"):
        store.add_history(down, "exploded", T0)


def test_delivery_log_newest_first_by_channel(store: AlertStore) -> None:
    for i in range(5):
        store.log_attempt(
            Attempt(
                channel="ops" if i % 2 else "mail",
                kind="firing",
                group_key="0:cam-pho",
                fingerprints=["a", "b"],
                attempt=i + 1,
                ok=i == 4,
                time_ms=T0 + i,
                error="" if i == 4 else "HTTP 500",
                status=200 if i == 4 else 500,
            )
        )
    store = reopen(store)
    log = store.attempts()
    assert [a.attempt for a in log] == [5, 4, 3, 2, 1]
    assert log[0].ok and log[0].fingerprints == ["a", "b"] and log[0].status == 200
    assert log[1].error == "HTTP 500" and not log[1].ok
    assert [a.attempt for a in store.attempts(channel="ops")] == [4, 2]
    assert len(store.attempts(limit=2)) == 2


def test_silences_expire_and_survive_a_restart(store: AlertStore) -> None:
    s = Silence(
        id="s1",
        matchers={"ward": "cam-pho", "device": "cam-*"},
        starts_ms=T0,
        ends_ms=T0 + 3_600_000,
        created_by="Lê Thị B",
        comment="thay cáp / recabling",
        created_ms=T0,
    )
    store.add_silence(s)
    store = reopen(store)
    assert store.silences() == [s]
    assert store.expire_silence("s1", T0 + 60_000)
    assert not store.expire_silence("s1", T0 + 120_000)  # already over
    assert not store.expire_silence("nope", T0)
    (got,) = store.silences()
    assert got.ends_ms == T0 + 60_000 and not got.active(T0 + 60_000)


def test_the_link_key_is_made_once_and_kept(store: AlertStore) -> None:
    key = store.secret()
    assert len(key) == 32
    store = reopen(store)
    assert store.secret() == key
    other = AlertStore(store.path.with_name("other.db"))
    other.open()
    assert other.secret() != key
    other.close()


def test_prune_bounds_history_attempts_and_old_silences(store: AlertStore) -> None:
    day = 86_400_000
    a = make_alert()
    for i in range(10):
        store.add_history(a, "firing", T0 + i * day)
        store.log_attempt(
            Attempt(
                channel="ops",
                kind="firing",
                group_key="g",
                fingerprints=[a.fingerprint],
                attempt=1,
                ok=True,
                time_ms=T0 + i * day,
            )
        )
    store.add_silence(Silence(id="old", matchers={"ward": "x"}, starts_ms=T0, ends_ms=T0 + day, created_by="a"))
    store.add_silence(Silence(id="recent", matchers={"ward": "x"}, starts_ms=T0, ends_ms=T0 + 8 * day, created_by="a"))
    now = T0 + 10 * day
    store.prune(now_ms=now, keep_days=5)
    assert [r["time"] for r in store.history()] == [T0 + i * day for i in range(9, 4, -1)]
    assert len(store.attempts()) == 5
    assert [s.id for s in store.silences()] == ["recent"]  # ended 2 days ago: still listed
    store.prune(now_ms=now, keep_days=90, max_rows=3)
    assert [r["time"] for r in store.history()] == [T0 + 9 * day, T0 + 8 * day, T0 + 7 * day]
    assert len(store.attempts()) == 3


def test_a_restart_mid_write_loses_nothing_committed(tmp_path: Path) -> None:
    """The file is left open (a crash): another connection sees every write that returned."""
    s = AlertStore(tmp_path / "alerts.db")
    s.open()
    a = make_alert()
    s.save_alert(a)
    s.save_sent(Sent(fingerprint=a.fingerprint, channel="ops", firing_ms=T0))
    after_crash = AlertStore(tmp_path / "alerts.db")
    after_crash.open()
    assert after_crash.load_alerts() == [a]
    assert after_crash.sent()[(a.fingerprint, "ops")].firing_ms == T0
    mode = after_crash.db.execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    after_crash.close()
    s.close()


def test_a_corrupt_file_gives_an_error_naming_it(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    with pytest.raises(StoreError, match=r"alerts\.state: cannot open .*alerts\.db.*not a database"):
        AlertStore(path).open()


def test_an_unusable_path_gives_an_error_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StoreError, match=r"alerts\.state: cannot open .*not-a-dir/alerts\.db"):
        AlertStore(blocker / "alerts.db").open()


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "alerts.db"
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 99")
    db.close()
    with pytest.raises(StoreError, match="newer wardwatch"):
        AlertStore(path).open()


def test_writes_are_cheap_enough_for_the_event_loop(store: AlertStore) -> None:
    """Each write is one fsynced statement; 200 history rows well under a second on this disk."""
    a = make_alert()
    started = time.perf_counter()
    for i in range(200):
        store.add_history(a, "firing", T0 + i)
    elapsed = time.perf_counter() - started
    assert elapsed < 2.0, f"200 writes took {elapsed:.2f}s"


# signed links -----------------------------------------------------------------------

KEY = b"k" * 32


def test_a_signed_link_verifies_until_it_expires() -> None:
    token = links.sign(KEY, "0123456789abcdef", expires_ms=T0 + 1000)
    assert token.replace("-", "").replace("_", "").replace(".", "").isalnum()  # goes into a URL as it is
    assert links.verify(KEY, token, now_ms=T0) == "0123456789abcdef"
    assert links.verify(KEY, token, now_ms=T0 + 1000) is None
    assert links.verify(b"q" * 32, token, now_ms=T0) is None


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("0123456789abcdef", "0123456789abcdee"),  # another alert
        lambda t: t.split(".")[0] + "." + "zzzzzzzzz" + "." + t.split(".")[2],  # a later expiry
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),  # another mac
        lambda t: t + ".x",
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "a" * 5000,
        lambda t: t.replace(".", "..", 1),
        lambda t: t[:-1] + "!",
    ],
)
def test_a_forged_or_malformed_link_is_refused(mangle: object) -> None:
    token = links.sign(KEY, "0123456789abcdef", expires_ms=T0 + 10**9)
    forged = mangle(token)  # type: ignore[operator]
    assert links.verify(KEY, forged, now_ms=T0) is None


# maintenance windows ----------------------------------------------------------------


def test_the_window_covers_only_its_hours_wards_devices_and_rules() -> None:
    w = MaintenanceWindow(
        wards=["cam-pho"],
        devices="cam-*",
        rules=["camera_not_ok"],
        rrule="FREQ=WEEKLY;BYDAY=SU;BYHOUR=2",
        duration="2h",
    )
    sunday_3am = datetime(2026, 5, 3, 3, 0, tzinfo=TZ)

    def at(now: datetime, **kw: str) -> MaintenanceWindow | None:
        args = {"ward": "cam-pho", "device": "cam-01", "rule": "camera_not_ok", **kw}
        return maintenance.active_window([w], now=now, tz=TZ, **args)

    assert at(sunday_3am) is w
    assert at(sunday_3am.replace(hour=1, minute=59)) is None
    assert at(sunday_3am.replace(hour=4)) is None  # [02:00, 04:00)
    assert at(sunday_3am + timedelta(days=1)) is None
    assert at(sunday_3am, ward="minh-an") is None
    assert at(sunday_3am, device="sw-core") is None
    assert at(sunday_3am, rule="device_down") is None
    assert at(sunday_3am.astimezone(ZoneInfo("UTC"))) is w  # 20:00 UTC Saturday is 03:00 Sunday here


def test_hourly_windows_are_fast_and_match_a_full_expansion() -> None:
    """Per alert per tick: an hourly rule anchored in 2000 costs dateutil 0.7 s a question."""
    from dateutil.rrule import rrulestr

    from wardwatch.collector.alerts.config import RRULE_ANCHOR

    text = "FREQ=HOURLY;INTERVAL=5;BYMINUTE=30"
    w = MaintenanceWindow(rrule=text, duration="40m")
    full = rrulestr(text, dtstart=RRULE_ANCHOR, ignoretz=True)
    now = datetime(2026, 5, 1, tzinfo=TZ)
    answers = []
    started = time.perf_counter()
    for i in range(5000):
        t = now + timedelta(seconds=30 * i)
        answers.append(maintenance.active_window([w], ward="a", device="b", rule="r", now=t, tz=TZ) is not None)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, f"5000 questions took {elapsed:.2f}s"
    local_now = now.replace(tzinfo=None)
    starts = full.between(local_now - timedelta(days=1), local_now + timedelta(days=3), inc=True)  # one expansion
    for i in range(5000):
        local = local_now + timedelta(seconds=30 * i)
        want = any(s <= local < s + timedelta(minutes=40) for s in starts)
        assert answers[i] == want, local
    assert any(answers) and not all(answers)


def test_upcoming_lists_seven_days_of_occurrences_with_offsets() -> None:
    w = MaintenanceWindow(wards=["cam-pho"], rrule="FREQ=DAILY;BYHOUR=2", duration="1h")
    now = datetime(2026, 5, 1, 2, 30, tzinfo=TZ)
    found = maintenance.upcoming([w], now=now, tz=TZ, until=now + timedelta(days=7))
    assert found[0] == {
        "index": 0,
        "start": "2026-05-01T02:00:00+07:00",
        "end": "2026-05-01T03:00:00+07:00",
        "active": True,
        "wards": ["cam-pho"],
        "devices": "*",
        "rules": [],
    }
    assert len(found) == 8 and not any(f["active"] for f in found[1:])
    assert found[-1]["start"] == "2026-05-08T02:00:00+07:00"
