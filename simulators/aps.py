"""snmpsim recordings of Wi-Fi APs and controllers, one per vendor MIB layout.

The tables follow the vendors' MIBs as real devices lay them out (see
shared/reference/devices.md section B): UniFi (UBNT-UniFi-MIB), Aruba Instant (AI-AP-MIB),
Cisco WLC (AIRESPACE-WIRELESS-MIB, one controller answering for many APs), MikroTik
(MIKROTIK-MIB mtxrWlApTable) and a Ruijie AC (RUIJIE-AC-MGMT).

Client counts move over the day: each is snmpsim's ``numeric`` module with
``function=sin,atime=1``, i.e. ``mid + amp x sin(2 pi x epoch / 86400)``, truncated to an
integer, so a test can say what a correct poller must have read at any moment
(:meth:`Curve.at`). Everything else is static. Nothing here knows the agent's code: the
expected values are what the MIBs mean, written down independently.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

DAY_RATE = 2 * math.pi / 86400
VENDORS = ("unifi", "aruba_instant", "cisco_wlc", "mikrotik", "ruijie_ac")
SSIDS = ("HoiAn-Free", "HoiAn-Staff")

IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
UNIFI = "1.3.6.1.4.1.41112.1.6"
ARUBA = "1.3.6.1.4.1.14823.2.3.3.1"
BSN = "1.3.6.1.4.1.14179"
MTXR_WL_AP = "1.3.6.1.4.1.14988.1.1.1.3.1"
RUIJIE = "1.3.6.1.4.1.4881.1.1.10.2.56"
SYS_OBJECT_IDS = {
    "unifi": "1.3.6.1.4.1.10002.1",  # what UniFi APs really say (Frogfoot); found by probing
    "aruba_instant": "1.3.6.1.4.1.14823.1.2.111",
    "cisco_wlc": "1.3.6.1.4.1.9.1.1615",
    "mikrotik": "1.3.6.1.4.1.14988.1",
    "ruijie_ac": "1.3.6.1.4.1.4881.1.1.10.1.100",
}


SHAPES = ("sine", "office", "evening")


@dataclass(frozen=True)
class Curve:
    """A client count over the day, t in epoch seconds (epoch 0 is 07:00 in Hội An, UTC+7):

    * ``sine`` and ``office``: ``mid + amp x sin(2 pi speed t / 86400)``, up from 07:00 to its
      peak at 13:00, lowest at 01:00: office hours;
    * ``evening``: ``mid - amp x cos(2 pi speed t / 86400)``, lowest at 07:00, highest at
      19:00: the old town's and the beach's tourist evenings.

    ``speed`` > 1 runs the day faster (``wardwatch-sim demo --fast``: a day in minutes).
    """

    mid: int
    amp: int
    shape: str = "sine"
    speed: float = 1.0

    def at(self, t: float) -> int:
        x = t * DAY_RATE * self.speed
        return int(self.mid + (-self.amp * math.cos(x) if self.shape == "evening" else self.amp * math.sin(x)))

    def snmprec(self) -> str:
        rate = DAY_RATE * self.speed
        if self.shape == "evening":
            return f"66:numeric|function=cos,atime=1,rate={rate!r},scale={-self.amp},offset={self.mid}"
        return f"66:numeric|function=sin,atime=1,rate={rate!r},scale={self.amp},offset={self.mid}"


@dataclass(frozen=True)
class Radio:
    ap: str  # the AP's name ("" for a stand-alone AP)
    radio: str  # the label a correct poller tags it with
    channel: int
    clients: tuple[tuple[str, Curve], ...]  # (ssid, curve): one per SSID the radio serves
    util_pct: int = 0
    noise_dbm: int | None = None
    tx_power_dbm: int = 20
    merged: bool = False  # the device counts the radio in one value, not per SSID

    def curve(self) -> Curve:
        return merge(c for _, c in self.clients)

    def clients_at(self, t: float) -> int:
        return self.curve().at(t) if self.merged else sum(c.at(t) for _, c in self.clients)


def merge(curves: Iterable[Curve]) -> Curve:
    """One curve that is the sum of several (same shape and speed, so exact before truncation)."""
    cs = list(curves)
    shape, speed = (cs[0].shape, cs[0].speed) if cs else ("sine", 1.0)
    if any((c.shape, c.speed) != (shape, speed) for c in cs):
        raise ValueError("merge: curves of one device share their shape and speed")
    return Curve(sum(c.mid for c in cs), sum(c.amp for c in cs), shape, speed)


@dataclass(frozen=True)
class ApSpec:
    vendor: str
    name: str
    seed: int = 0
    aps: int = 3  # APs behind a controller (cisco_wlc, aruba_instant, ruijie_ac)
    shape: str = "sine"  # the clients' day: sine (the plain curve), office or evening (Curve)
    speed: float = 1.0  # days per day: > 1 compresses the curve (the demo's --fast)
    clients: float = 1.0  # scales every client count (office and evening shapes)
    ap_names_: tuple[str, ...] = ()  # a controller's AP names (default NAME-ap1, NAME-ap2, ...)
    _radios: tuple[Radio, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.vendor not in VENDORS:
            raise ValueError(f"vendor must be one of {', '.join(VENDORS)}, not {self.vendor!r}")
        if self.shape not in SHAPES or self.speed <= 0:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)} and speed > 0")
        if self.ap_names_ and len(self.ap_names_) != self.aps:
            raise ValueError("ap_names_: one name per AP")
        object.__setattr__(self, "_radios", tuple(_radios(self)))

    @property
    def controller(self) -> bool:
        return self.vendor in ("cisco_wlc", "aruba_instant", "ruijie_ac")

    def radios(self) -> tuple[Radio, ...]:
        return self._radios

    def ap_names(self) -> list[str]:
        return list(dict.fromkeys(r.ap for r in self._radios))

    def ssid_clients_at(self, t: float) -> dict[str, int]:
        """SSID -> clients, as a correct poller reports them from this device's tables."""
        out: dict[str, int] = {}
        if self.vendor in ("aruba_instant", "cisco_wlc"):  # a per-SSID table: one value each
            return {ssid: self.ssid_curve(ssid).at(t) for ssid in SSIDS if self.ssid_curve(ssid).mid}
        if self.vendor == "ruijie_ac":
            return out  # no per-SSID table
        for r in self._radios:
            for ssid, c in r.clients:
                out[ssid] = out.get(ssid, 0) + c.at(t)
        return out

    def ssid_curve(self, ssid: str) -> Curve:
        return merge(c for r in self._radios for s, c in r.clients if s == ssid)

    def total_clients_curve(self) -> Curve:
        return merge(c for r in self._radios for _, c in r.clients)


def _radios(spec: ApSpec) -> Iterator[Radio]:
    rng = random.Random(f"{spec.vendor}/{spec.name}/{spec.seed}")
    aps = (list(spec.ap_names_) or [f"{spec.name}-ap{i + 1}" for i in range(spec.aps)]) if spec.controller else [""]
    for ap in aps:
        bands = [("2.4GHz", rng.choice([1, 6, 11])), ("5GHz", rng.choice([36, 44, 149, 157]))]
        for slot, (band, channel) in enumerate(bands):
            labels = {"aruba_instant": str(slot), "mikrotik": f"wlan{slot + 1}", "ruijie_ac": "all"}
            label = labels.get(spec.vendor, band)
            ssids = SSIDS if spec.vendor in ("unifi", "cisco_wlc", "aruba_instant") else SSIDS[:1]
            if spec.vendor == "mikrotik" and slot == 1:
                ssids = SSIDS[1:]
            curves = tuple((s, _curve(spec, rng.randrange(8, 30), rng.randrange(2, 8))) for s in ssids)
            if spec.vendor == "ruijie_ac" and slot == 1:
                break  # the AC counts clients per AP: one row each
            yield Radio(ap=ap, radio=label, channel=channel, clients=curves, util_pct=rng.randrange(5, 70),
                        noise_dbm=-rng.randrange(88, 100), tx_power_dbm=rng.randrange(12, 24),
                        merged=spec.vendor in ("aruba_instant", "cisco_wlc", "ruijie_ac"))


def _curve(spec: ApSpec, mid: int, amp: int) -> Curve:
    """office and evening scale by ``clients`` and swing wider than the plain sine: most of a
    radio's clients come and go over the day (office: amp >= 2/3 mid, evening: >= 3/4 mid)."""
    if spec.shape == "sine":
        return Curve(mid, amp, spec.shape, spec.speed)
    mid = max(2, round(mid * spec.clients))
    swing = mid * 2 // 3 if spec.shape == "office" else mid * 3 // 4
    return Curve(mid, max(round(amp * spec.clients), swing), spec.shape, spec.speed)


def _str(text: str) -> str:
    return f"4|{text}" if text.isascii() and text.isprintable() and "|" not in text else f"4x|{text.encode().hex()}"


def _mac(spec: ApSpec, ap: str) -> str:
    rng = random.Random(f"mac/{spec.name}/{ap}")
    return ".".join(str(b) for b in (0, 0x0B, 0x86, rng.randrange(256), rng.randrange(256), rng.randrange(256)))


def _mac_hex(dotted: str) -> str:
    return "4x|" + "".join(f"{int(b):02x}" for b in dotted.split("."))


def _common(spec: ApSpec, descr: str, interfaces: list[str]) -> dict[str, str]:
    rows = {
        "1.3.6.1.2.1.1.1.0": _str(descr),
        "1.3.6.1.2.1.1.2.0": f"6|{SYS_OBJECT_IDS[spec.vendor]}",
        "1.3.6.1.2.1.1.3.0": "67:numeric|rate=100",
        "1.3.6.1.2.1.1.5.0": _str(spec.name),
        "1.3.6.1.2.1.2.1.0": f"2|{len(interfaces)}",
    }
    for i, name in enumerate(interfaces, start=1):
        rate = 50_000 * i
        rows.update({
            f"{IF_ENTRY}.1.{i}": f"2|{i}", f"{IF_ENTRY}.2.{i}": _str(name), f"{IF_ENTRY}.8.{i}": "2|1",
            f"{IF_ENTRY}.10.{i}": f"65:numeric|rate={rate},initial=1000,max=4294967296,wrap=1",
            f"{IF_ENTRY}.16.{i}": f"65:numeric|rate={rate * 4},initial=1000,max=4294967296,wrap=1",
            f"{IFX_ENTRY}.1.{i}": _str(name),
            f"{IFX_ENTRY}.6.{i}": f"70:numeric|rate={rate},initial=1000",
            f"{IFX_ENTRY}.10.{i}": f"70:numeric|rate={rate * 4},initial=1000",
            f"{IFX_ENTRY}.15.{i}": "66|1000",
        })
    return rows


def _unifi(spec: ApSpec) -> dict[str, str]:
    rows = _common(spec, "Linux U6-Lite 4.4.153 #1 SMP", ["eth0", "wifi0", "wifi1"])
    rows[f"{UNIFI}.3.3.0"] = _str("U6-Lite")  # unifiApSystemModel: the probe
    rows[f"{UNIFI}.3.6.0"] = _str("6.6.55")
    vap = 0
    for i, r in enumerate(spec.radios(), start=1):
        key = "ng" if r.radio == "2.4GHz" else "na"
        rows.update({f"{UNIFI}.1.1.1.1.{i}": f"2|{i}", f"{UNIFI}.1.1.1.2.{i}": _str(f"wifi{i - 1}"),
                     f"{UNIFI}.1.1.1.3.{i}": _str(key), f"{UNIFI}.1.1.1.6.{i}": f"2|{r.util_pct}"})
        for ssid, curve in r.clients:
            vap += 1
            rows.update({
                f"{UNIFI}.1.2.1.1.{vap}": f"2|{vap}", f"{UNIFI}.1.2.1.4.{vap}": f"2|{r.channel}",
                f"{UNIFI}.1.2.1.6.{vap}": _str(ssid), f"{UNIFI}.1.2.1.8.{vap}": curve.snmprec(),
                f"{UNIFI}.1.2.1.9.{vap}": _str(key), f"{UNIFI}.1.2.1.21.{vap}": f"2|{r.tx_power_dbm}",
                f"{UNIFI}.1.2.1.22.{vap}": "2|1",
            })
    return rows


def _aruba(spec: ApSpec) -> dict[str, str]:
    rows = _common(spec, "ArubaOS (MODEL: 515), Version 8.10.0.6", ["eth0"])
    rows[f"{ARUBA}.1.2.0"] = _str(f"{spec.name}-vc")  # aiVirtualControllerName: the probe
    for n, ap in enumerate(spec.ap_names(), start=1):
        mac = _mac(spec, ap)
        rows.update({f"{ARUBA}.2.1.1.1.{mac}": _mac_hex(mac), f"{ARUBA}.2.1.1.2.{mac}": _str(ap),
                     f"{ARUBA}.2.1.1.7.{mac}": f"2|{10 + n}", f"{ARUBA}.2.1.1.11.{mac}": "2|1"})
    for r in spec.radios():
        idx = f"{_mac(spec, r.ap)}.{r.radio}"
        width = 3 if r.channel > 14 else 0  # channel-width bits above the channel number
        rows.update({
            f"{ARUBA}.2.2.1.1.{idx}": f"2|{r.radio}", f"{ARUBA}.2.2.1.4.{idx}": f"2|{r.channel + 256 * width}",
            f"{ARUBA}.2.2.1.5.{idx}": f"2|{r.tx_power_dbm}", f"{ARUBA}.2.2.1.6.{idx}": f"2|{-(r.noise_dbm or 0)}",
            f"{ARUBA}.2.2.1.8.{idx}": f"2|{r.util_pct}",
            f"{ARUBA}.2.2.1.21.{idx}": _sum_curve(r),
        })
    _ssid_table(rows, spec, f"{ARUBA}.1.7.1", name_col=2, clients_col=4)
    return rows


def _sum_curve(r: Radio) -> str:
    return r.curve().snmprec()


def _ssid_table(rows: dict[str, str], spec: ApSpec, entry: str, *, name_col: int, clients_col: int) -> None:
    """A per-SSID table whose counts are the sums of the radios' curves (same phase, so exact)."""
    for i, ssid in enumerate(SSIDS, start=1):
        curve = spec.ssid_curve(ssid)
        if curve.mid:
            rows[f"{entry}.1.{i}"] = f"2|{i}"
            rows[f"{entry}.{name_col}.{i}"] = _str(ssid)
            rows[f"{entry}.{clients_col}.{i}"] = curve.snmprec()


def _cisco(spec: ApSpec) -> dict[str, str]:
    rows = _common(spec, "Cisco Controller", ["port1", "port2"])
    rows[f"{BSN}.1.1.1.3.0"] = _str("AIR-CT5520-K9")  # agentInventoryMachineModel: the probe
    rows["1.3.6.1.4.1.9.9.618.1.8.4.0"] = f"66|{len(spec.ap_names())}"  # clsSysApConnectCount
    for ap in spec.ap_names():
        mac = _mac(spec, ap)
        rows.update({f"{BSN}.2.2.1.1.1.{mac}": _mac_hex(mac), f"{BSN}.2.2.1.1.3.{mac}": _str(ap),
                     f"{BSN}.2.2.1.1.6.{mac}": "2|1"})
    for r in spec.radios():
        slot = 0 if r.radio == "2.4GHz" else 1
        idx = f"{_mac(spec, r.ap)}.{slot}"
        rows.update({
            f"{BSN}.2.2.2.1.1.{idx}": f"2|{slot}", f"{BSN}.2.2.2.1.12.{idx}": "2|2",
            f"{BSN}.2.2.2.1.15.{idx}": _sum_curve(r), f"{BSN}.2.2.13.1.3.{idx}": f"2|{r.util_pct}",
            f"{BSN}.2.2.4.1.4.{idx}": f"2|{r.channel}",
        })
    _ssid_table(rows, spec, f"{BSN}.2.1.1.1", name_col=2, clients_col=38)
    return rows


def _mikrotik(spec: ApSpec) -> dict[str, str]:
    rows = _common(spec, "RouterOS RB962UiGS-5HacT2HnT", ["ether1", "wlan1", "wlan2"])
    rows["1.3.6.1.2.1.25.3.3.1.2.1"] = "2|7"  # hrProcessorLoad
    for i, r in enumerate(spec.radios(), start=2):  # wlan1 is ifIndex 2
        ((ssid, curve),) = r.clients
        freq = 2407 + 5 * r.channel if r.channel <= 14 else 5000 + 5 * r.channel
        rows.update({f"{MTXR_WL_AP}.4.{i}": _str(ssid), f"{MTXR_WL_AP}.6.{i}": curve.snmprec(),
                     f"{MTXR_WL_AP}.7.{i}": f"2|{freq}", f"{MTXR_WL_AP}.9.{i}": f"2|{r.noise_dbm}"})
    return rows


def _ruijie(spec: ApSpec) -> dict[str, str]:
    rows = _common(spec, "Ruijie Wireless Controller WS6008", ["Gi0/1"])
    names = spec.ap_names()
    rows.update({f"{RUIJIE}.1.1.11.0": f"2|{len(names)}", f"{RUIJIE}.1.1.80.0": "2|0",
                 f"{RUIJIE}.1.1.15.0": spec.total_clients_curve().snmprec()})
    for r in spec.radios():
        mac = _mac(spec, r.ap)
        rows.update({f"{RUIJIE}.2.1.1.1.1.{mac}": _mac_hex(mac), f"{RUIJIE}.2.1.1.1.2.{mac}": _str(r.ap),
                     f"{RUIJIE}.2.1.1.1.34.{mac}": _sum_curve(r), f"{RUIJIE}.2.1.1.1.48.{mac}": "2|1"})
    return rows


RENDERERS = {"unifi": _unifi, "aruba_instant": _aruba, "cisco_wlc": _cisco, "mikrotik": _mikrotik,
             "ruijie_ac": _ruijie}


def _oid_key(line: str) -> tuple[int, ...]:
    return tuple(int(x) for x in line.split("|", 1)[0].split("."))


def render_ap(spec: ApSpec) -> str:
    rows = RENDERERS[spec.vendor](spec)
    return "\n".join(sorted((f"{oid}|{v}" for oid, v in rows.items()), key=_oid_key)) + "\n"


def write_many(data_dir: Path, recordings: dict[str, str]) -> None:
    """Many devices on one snmpsim endpoint: each recording under its own community
    (the file name), plus ``public`` (the readiness probe's) when none is called that."""
    data_dir.mkdir(parents=True, exist_ok=True)
    for community, text in recordings.items():
        (data_dir / f"{community}.snmprec").write_text(text)
    if "public" not in recordings:
        (data_dir / "public.snmprec").write_text("1.3.6.1.2.1.1.3.0|67:numeric|rate=100\n")
