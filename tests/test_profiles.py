"""Vendor profiles: the loader's errors, extends, matching, and the evaluator (pure logic)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from wardwatch.agent.snmp.evaluate import evaluate
from wardwatch.agent.snmp.profiles import BUILTIN_DIR, ProfileError, load_catalog, load_file

UNIFI_PROBE = "1.3.6.1.4.1.41112.1.6.3.3.0"


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_every_shipped_profile_loads_and_resolves() -> None:
    cat = load_catalog()
    names = set(cat.profiles)
    assert {"if_mib", "poe", "lldp", "host_resources", "entity_sensor", "generic_switch", "unifi",
            "aruba_instant", "cisco_wlc", "mikrotik", "ruijie_ac"} <= names
    assert cat.resolve("generic_switch").chain == ("if_mib", "poe", "lldp", "host_resources", "entity_sensor",
                                                   "generic_switch")
    assert len(list(BUILTIN_DIR.glob("*.yaml"))) == len(names)


def test_unknown_metric_name_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path / "acme.yaml", """
name: acme
tables:
  - name: radio
    oid: 1.3.6.1.4.1.99.1
    measurement: wifi_radio
    metrics:
      client_count: {col: 3}
""")
    with pytest.raises(ProfileError) as err:
        load_file(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: tables[0].metrics.client_count: unknown metric 'client_count' for wifi_radio")
    assert "clients" in msg  # the known names are listed


@pytest.mark.parametrize(("body", "expected"), [
    ("name: acme\nbogus: 1\n", "bogus: unknown key"),
    ("name: acme\ntables: [{name: t, oid: 1.3.6.1, measurement: poe, tags: {colour: {col: 1}},"
     " metrics: {delivering: {col: 2}}}]\n", "poe has no tag 'colour'"),
    ("name: acme\ntables: [{name: t, oid: 1.3.6.1, measurement: poe, metrics: {delivering: {col: 'x'}}}]\n",
     "tables[0].metrics.delivering.col"),
    ("name: acme\nextends: [nothing_here]\n", "extends: unknown profile 'nothing_here'"),
])
def test_bad_profiles_are_refused(tmp_path: Path, body: str, expected: str) -> None:
    write(tmp_path / "acme.yaml", body)
    with pytest.raises(ProfileError, match=re.escape(expected)):
        load_catalog([tmp_path])


def test_user_profile_overrides_shipped_and_extends_it(tmp_path: Path) -> None:
    write(tmp_path / "mikrotik.yaml", """
name: mikrotik
vendor: mikrotik
kind: ap
match: {sysobjectid: ["1.3.6.1.4.1.14988.1"]}
extends: [if_mib]
""")
    write(tmp_path / "acme_switch.yaml", """
name: acme_switch
vendor: acme
match: {sysobjectid: ["1.3.6.1.4.1.99.*"]}
extends: [generic_switch]
""")
    cat = load_catalog([tmp_path])
    assert cat.resolve("mikrotik").chain == ("if_mib", "mikrotik")
    acme = cat.match("1.3.6.1.4.1.99.7")
    assert acme is not None and acme.name == "acme_switch" and acme.kind == "switch" and acme.vendor == "acme"


def test_match_by_glob_then_probe_then_fallback() -> None:
    cat = load_catalog()
    assert cat.match("1.3.6.1.4.1.14988.1").name == "mikrotik"  # type: ignore[union-attr]
    # A UniFi AP says it is a Frogfoot box; the probe OID gives it away.
    assert cat.match("1.3.6.1.4.1.10002.1", [UNIFI_PROBE]).name == "unifi"  # type: ignore[union-attr]
    assert cat.match("1.3.6.1.4.1.10002.1").name == "generic_switch"  # type: ignore[union-attr]
    assert UNIFI_PROBE in cat.probe_oids()


def run(profile: str, cols: dict[str, dict[str, object]], scalars: dict[str, object] | None = None) -> dict:
    r = load_catalog().resolve(profile)
    ev = evaluate(r, cols=cols, scalars=scalars or {}, device="ap-1", kind="ap", time_ms=1, base_tags={"vendor": "x"})
    assert not ev.problems, ev.problems
    return {(x.measurement, tuple(sorted(x.tags.items()))): x.fields for x in ev.readings}


def test_unifi_clients_sum_per_radio_and_per_ssid() -> None:
    vap, radio = "1.3.6.1.4.1.41112.1.6.1.2.1", "1.3.6.1.4.1.41112.1.6.1.1.1"
    cols: dict[str, dict[str, object]] = {
        f"{radio}.3": {"1": b"ng", "2": b"na"}, f"{radio}.6": {"1": 41, "2": 12},
        f"{vap}.4": {"1": 6, "2": 6, "3": 36},
        f"{vap}.6": {"1": b"HoiAn-Free", "2": b"HoiAn-Staff", "3": b"HoiAn-Free"},
        f"{vap}.8": {"1": 10, "2": 3, "3": 7},
        f"{vap}.9": {"1": b"ng", "2": b"ng", "3": b"na"},
        f"{vap}.21": {"1": 20, "2": 20, "3": 23}, f"{vap}.22": {"1": 1, "2": 1, "3": 1},
    }
    out = run("unifi", cols)
    assert out[("wifi_radio", (("radio", "2.4GHz"), ("vendor", "x")))] == {
        "util_pct": 41, "clients": 13, "channel": 6, "tx_power_dbm": 20, "up": 1}
    assert out[("wifi_radio", (("radio", "5GHz"), ("vendor", "x")))]["clients"] == 7
    assert out[("wifi_ssid", (("ssid", "HoiAn-Free"), ("vendor", "x")))] == {"clients": 17}


def test_wlc_gives_one_series_per_ap_and_radio() -> None:
    mac1, mac2 = "0.1.2.3.4.5", "0.1.2.3.4.6"
    ap_if, load, ap = "1.3.6.1.4.1.14179.2.2.2.1", "1.3.6.1.4.1.14179.2.2.13.1", "1.3.6.1.4.1.14179.2.2.1.1"
    cols: dict[str, dict[str, object]] = {
        f"{ap}.3": {mac1: b"ap-cho", mac2: b"ap-hall"}, f"{ap}.6": {mac1: 1, mac2: 2},
        f"{ap_if}.15": {f"{mac1}.0": 5, f"{mac1}.1": 9, f"{mac2}.0": 0},
        f"{ap_if}.12": {f"{mac1}.0": 2, f"{mac1}.1": 2, f"{mac2}.0": 1},
        f"{load}.3": {f"{mac1}.1": 33},
    }
    out = run("cisco_wlc", cols, {"1.3.6.1.4.1.9.9.618.1.8.4.0": 2})
    assert out[("wifi_radio", (("ap", "ap-cho"), ("radio", "5GHz"), ("vendor", "x")))] == {
        "clients": 9, "up": 1, "util_pct": 33}
    assert out[("wifi_radio", (("ap", "ap-hall"), ("radio", "2.4GHz"), ("vendor", "x")))] == {"clients": 0, "up": 0}
    assert out[("device_health", (("vendor", "x"),))] == {"aps_joined": 2, "aps_down": 1}


def test_transforms_maps_and_filters() -> None:
    aruba = "1.3.6.1.4.1.14823.2.3.3.1.2.2.1"
    mac = "0.11.134.1.2.3"
    out = run("aruba_instant", {
        "1.3.6.1.4.1.14823.2.3.3.1.2.1.1.2": {mac: b"ap-market"},
        f"{aruba}.4": {f"{mac}.0": 6 | 0x100, f"{mac}.1": 149},  # width bits above the channel
        f"{aruba}.6": {f"{mac}.0": 94, f"{mac}.1": 97},
        f"{aruba}.21": {f"{mac}.0": 4, f"{mac}.1": 11},
    })
    radio0 = out[("wifi_radio", (("ap", "ap-market"), ("radio", "0"), ("vendor", "x")))]
    assert radio0 == {"channel": 6, "noise_dbm": -94, "clients": 4}
    # ENTITY-SENSOR: only celsius rows (type 8), value x 10^(3(scale-9)) / 10^precision, hottest wins.
    sensor = "1.3.6.1.2.1.99.1.1.1"
    out = run("entity_sensor", {f"{sensor}.1": {"1": 8, "2": 8, "3": 6}, f"{sensor}.2": {"1": 9, "2": 9, "3": 9},
                                f"{sensor}.3": {"1": 1, "2": 0, "3": 0}, f"{sensor}.4": {"1": 415, "2": 38, "3": 90}})
    assert out[("device_health", (("vendor", "x"),))] == {"temp_c": 41.5}
    # MikroTik: frequency in MHz gives the channel; the radio is the interface's ifName.
    wl = "1.3.6.1.4.1.14988.1.1.1.3.1"
    out = run("mikrotik", {"1.3.6.1.2.1.31.1.1.1.1": {"5": b"wlan1"}, f"{wl}.4": {"5": b"HoiAn-Free"},
                           f"{wl}.6": {"5": 14}, f"{wl}.7": {"5": 2437}, f"{wl}.9": {"5": -101}})
    assert out[("wifi_radio", (("radio", "wlan1"), ("vendor", "x")))] == {
        "clients": 14, "freq_mhz": 2437, "channel": 6, "noise_dbm": -101}


def test_garbage_value_is_reported_and_the_rest_still_counts() -> None:
    r = load_catalog().resolve("poe")
    col = "1.3.6.1.2.1.105.1.3.1.1"
    ev = evaluate(r, cols={f"{col}.2": {"1": 370}, f"{col}.4": {"1": b"lots"}}, scalars={}, device="sw",
                  kind="switch", time_ms=1)
    assert [x.fields for x in ev.readings] == [{"budget_w": 370}]
    assert ev.problems == ["pse_main.1: consumption_w: expected a number, got text 'lots'"]
