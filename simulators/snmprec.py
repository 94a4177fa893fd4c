"""Generate snmpsim ``.snmprec`` recordings of an access switch with moving counters.

The counters use snmpsim's ``numeric`` variation module *without* ``cumulative``:
snmpsim then serves ``initial + rate * t``, where ``t`` is the seconds since the
simulator process started (the same clock as sysUpTime, which is
``rate=100``). That is exactly linear in wall time, and restarting the simulator
resets uptime and counters together, as a reboot does. (``cumulative=1`` is *not*
linear in snmpsim 1.2.2: each GET adds ``rate * t_since_start`` to the previous
value, so the growth depends on how often it is polled.)

Counter32 octet columns carry the same ``initial`` and ``rate`` as their Counter64
twins, with ``max=4294967296,wrap=1``, so they are the HC value modulo 2**32 and
wrap as a real 32-bit counter does.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

COUNTER32_MODULUS = 2**32
GAUGE32_MAX = 2**32 - 1
# Private Enterprise Number 32473 is reserved for documentation (RFC 5612).
SIM_ENTERPRISE_OID = "1.3.6.1.4.1.32473"

SYSTEM = "1.3.6.1.2.1.1"
IF_NUMBER = "1.3.6.1.2.1.2.1.0"
IF_ENTRY = "1.3.6.1.2.1.2.2.1"
IFX_ENTRY = "1.3.6.1.2.1.31.1.1.1"
ENT_PHYSICAL_ENTRY = "1.3.6.1.2.1.47.1.1.1.1"

# Bytes per second drawn per role: (in_lo, in_hi, out_lo, out_hi). "in" is what the
# switch receives on the port, i.e. what the attached device sends.
ROLE_RATES: dict[str, tuple[int, int, int, int]] = {
    "camera": (500_000, 1_000_000, 2_000, 10_000),
    "ap": (50_000, 400_000, 200_000, 2_000_000),
    "office": (10_000, 200_000, 50_000, 1_000_000),
}
POE_BUDGET_W = 370
POE_WATTS = {"camera": 6, "ap": 13}  # whole watts, so the sum is exact
CPU_LOADS = (12, 18)  # hrProcessorLoad per CPU: 15 on average
TEMP_TENTHS_C = 415  # entPhySensorValue with precision 1: 41.5 C
PETH_PORT = "1.3.6.1.2.1.105.1.1.1"
PETH_MAIN = "1.3.6.1.2.1.105.1.3.1.1"
LLDP_LOC_PORT = "1.0.8802.1.1.2.1.3.7.1"
LLDP_REM = "1.0.8802.1.1.2.1.4.1.1"
ROLE_ALIAS = {"camera": "cam", "ap": "ap", "office": "pc", "unused": "unused", "shutdown": "disabled"}
PORT_COUNTS = (8, 16, 24, 48)
ROLES = ("camera", "ap", "office", "unused", "shutdown", "downlink")
# A response snmpsim's delay module is told to wait longer than 99999 ms for is dropped, not
# delayed (snmpsim 1.2.2 variation/delay.py): the device stops answering, the process does not.
SILENT = "4:delay|value=x,wait=100000"


@dataclass(frozen=True)
class PortSpec:
    """One switch port and the traffic the simulator makes it carry."""

    index: int
    name: str
    descr: str
    alias: str
    role: str  # camera | ap | office | uplink | unused | shutdown
    speed_mbps: int
    admin_up: bool
    oper_up: bool
    in_bytes_ps: int
    out_bytes_ps: int
    in_err_ps: float
    out_err_ps: float
    in_initial: int
    out_initial: int

    @property
    def in_bps(self) -> int:
        return self.in_bytes_ps * 8

    @property
    def out_bps(self) -> int:
        return self.out_bytes_ps * 8


@dataclass(frozen=True)
class SwitchSpec:
    """A simulated switch: everything in its recording follows from these fields."""

    name: str = "sw-core"
    ports: int = 24
    seed: int = 0
    uplink_port: int | None = None  # ifIndex of the uplink; None means the last port
    uplink_speed_mbps: int = 10_000
    location: str = ""
    contact: str = "IT Hoi An <it@hoian.example>"
    poe: bool = False  # POWER-ETHERNET-MIB: camera and AP ports deliver power
    lldp: bool = False  # LLDP-MIB: the attached cameras, APs and the city core are neighbours
    health: bool = False  # HOST-RESOURCES CPU load and an ENTITY-SENSOR temperature
    # Explicit port roles, one per port in ifIndex order, the uplink's place included (its
    # entry is ignored); empty: drawn from the seed. Lets a fleet plan its access switches.
    roles: tuple[str, ...] = ()
    # (ifIndex, alias) for ports that carry a name of their own, e.g. (5, "cam-07"): the port
    # alias and the LLDP neighbour on that port.
    aliases: tuple[tuple[int, str], ...] = ()
    # (ifIndex, neighbour sysName, in bytes/s, out bytes/s) of the "downlink" ports: a switch
    # behind this one, carrying what that switch's uplink carries.
    downlinks: tuple[tuple[int, str, int, int], ...] = ()
    uplink_neighbor: tuple[str, str] = ("city-core", "Te1/0/1")  # (sysName, port) of the LLDP peer
    _ports: tuple[PortSpec, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.ports not in PORT_COUNTS:
            raise ValueError(f"ports must be one of {', '.join(map(str, PORT_COUNTS))}, not {self.ports}")
        if not 1 <= self.uplink_index <= self.ports:
            raise ValueError(f"uplink_port {self.uplink_port} is not a port of a {self.ports}-port switch")
        if self.roles and (len(self.roles) != self.ports or not set(self.roles) <= {*ROLES, "uplink"}):
            raise ValueError(f"roles: give {self.ports} of {', '.join(ROLES)}")
        if any(self.roles[i - 1] != "downlink" for i, *_ in self.downlinks) if self.roles else self.downlinks:
            raise ValueError("downlinks: each needs an explicit 'downlink' role on its port")
        object.__setattr__(self, "_ports", tuple(_make_ports(self)))

    @property
    def uplink_index(self) -> int:
        return self.ports if self.uplink_port is None else self.uplink_port

    def port_specs(self) -> tuple[PortSpec, ...]:
        return self._ports

    def expected_bps(self) -> dict[str, tuple[int, int]]:
        """ifName -> (in_bps, out_bps), in bits per second, as a correct poller reports them."""
        return {p.name: (p.in_bps, p.out_bps) for p in self._ports}

    def poe_delivering(self) -> dict[str, int]:
        """ifName -> 1 where the port powers its device (cameras and APs that are up)."""
        return {p.name: int(_powered(p)) for p in self._ports if p.role not in ("uplink", "downlink")}

    def poe_consumption_w(self) -> int:
        return sum(POE_WATTS[p.role] for p in self._ports if _powered(p))

    def lldp_neighbors(self) -> dict[str, tuple[str, str]]:
        """ifName -> (remote sysName, remote port) for the ports with an LLDP neighbour."""
        return {p.name: _neighbor(self, p) for p in self._ports
                if p.role in ("camera", "ap", "uplink", "downlink") and p.oper_up}

    def port(self, name: str) -> PortSpec:
        for p in self._ports:
            if p.name == name:
                return p
        raise KeyError(name)


def _make_ports(spec: SwitchSpec) -> list[PortSpec]:
    rng = random.Random(f"{spec.name}/{spec.ports}/{spec.seed}")
    if spec.roles:
        roles = list(spec.roles)
    else:
        roles = rng.choices(["camera", "ap", "office", "unused", "shutdown"], weights=[40, 20, 20, 15, 5],
                            k=spec.ports)
        access = [i for i in range(spec.ports) if i + 1 != spec.uplink_index]
        # Every switch has at least one camera and two dark ports, whatever the seed.
        roles[access[0]] = "camera"
        roles[access[-1]] = "unused"
        roles[access[-2]] = "unused"
    aliases = dict(spec.aliases)
    downlinks = {i: (name, rx, tx) for i, name, rx, tx in spec.downlinks}

    ports = []
    for i, role in enumerate(roles):
        index = i + 1
        if index == spec.uplink_index:
            continue
        if role == "downlink":
            name, rx, tx = downlinks.get(index, ("", 0, 0))
            port = _access_port(rng, index, "office", alias=aliases.get(index) or f"to {name or 'switch'}")
            age = rng.randrange(200_000, 2_000_000)
            port = replace(port, role="downlink", in_bytes_ps=rx, out_bytes_ps=tx, in_err_ps=0.0, out_err_ps=0.0,
                           in_initial=rx * age, out_initial=tx * age)
        else:
            port = _access_port(rng, index, role, alias=aliases.get(index))
        _check_speed(port)
        ports.append(port)
    up_in = sum(p.out_bytes_ps for p in ports)  # what the clients download arrives on the uplink
    up_out = sum(p.in_bytes_ps for p in ports)
    ten = spec.uplink_speed_mbps >= 10_000
    uplink = PortSpec(
        index=spec.uplink_index,
        name=f"{'Te' if ten else 'Gi'}1/0/{spec.uplink_index}",
        descr=f"{'TenGigabitEthernet' if ten else 'GigabitEthernet'}1/0/{spec.uplink_index}",
        alias="uplink to city core",
        role="uplink",
        speed_mbps=spec.uplink_speed_mbps,
        admin_up=True,
        oper_up=True,
        in_bytes_ps=up_in,
        out_bytes_ps=up_out,
        in_err_ps=0.0,
        out_err_ps=0.0,
        in_initial=up_in * rng.randrange(200_000, 2_000_000),
        out_initial=up_out * rng.randrange(200_000, 2_000_000),
    )
    _check_speed(uplink)
    ports.insert(spec.uplink_index - 1, uplink)
    return ports


def _access_port(rng: random.Random, index: int, role: str, *, alias: str | None = None) -> PortSpec:
    up = role in ROLE_RATES
    if up:
        in_lo, in_hi, out_lo, out_hi = ROLE_RATES[role]
        in_rate, out_rate = rng.randrange(in_lo, in_hi + 1), rng.randrange(out_lo, out_hi + 1)
        noisy = rng.random() < 0.2
        in_err = round(rng.uniform(0.01, 0.05), 3) if noisy else 0.0
        out_err = round(rng.uniform(0.0, 0.01), 3) if noisy else 0.0
    else:
        in_rate = out_rate = 0
        in_err = out_err = 0.0
    # A counter that has been running for a few days; dark ports keep what they had.
    age_s = rng.randrange(100_000, 3_000_000)
    port = PortSpec(
        index=index,
        name=f"Gi1/0/{index}",
        descr=f"GigabitEthernet1/0/{index}",
        alias=alias or f"{ROLE_ALIAS[role]}-{index:02d}",
        role=role,
        speed_mbps=1000,
        admin_up=role != "shutdown",
        oper_up=up,
        in_bytes_ps=in_rate,
        out_bytes_ps=out_rate,
        in_err_ps=in_err,
        out_err_ps=out_err,
        in_initial=(in_rate or 700_000) * age_s,
        out_initial=(out_rate or 90_000) * age_s,
    )
    return port


def _check_speed(port: PortSpec) -> None:
    limit = port.speed_mbps * 1_000_000 * 1.1
    if max(port.in_bps, port.out_bps) > limit:
        raise ValueError(f"{port.name}: rate above 1.1 x ifHighSpeed")


def _str(text: str) -> str:
    """An OCTET STRING value: plain when safe, else hex of its UTF-8 bytes."""
    if text.isascii() and text.isprintable() and "|" not in text and text.strip() == text:
        return f"4|{text}"
    return f"4x|{text.encode().hex()}"


def _num(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(float(x))


def _counter(tag: int, rate: float, initial: int, *, wrap32: bool = False) -> str:
    """A counter that snmpsim serves as ``initial + rate * seconds_since_start``."""
    if rate == 0:
        return f"{tag}|{initial % COUNTER32_MODULUS if wrap32 else initial}"
    params = f"rate={_num(rate)},initial={initial}"
    if wrap32:
        params += f",max={COUNTER32_MODULUS},wrap=1"
    return f"{tag}:numeric|{params}"


def _mac(spec: SwitchSpec, index: int) -> str:
    rng = random.Random(f"mac/{spec.name}/{spec.seed}")
    base = rng.randrange(0, 2**16)
    return f"02{base:04x}{index:06x}"  # six bytes, locally administered


def _powered(p: PortSpec) -> bool:
    return p.role in POE_WATTS and p.oper_up


def _neighbor(spec: SwitchSpec, p: PortSpec) -> tuple[str, str]:
    if p.role == "uplink":
        return spec.uplink_neighbor
    if p.role == "downlink":
        name = next((n for i, n, _, _ in spec.downlinks if i == p.index), p.alias)
        return (name, "uplink")
    return (p.alias, "eth0")


def _extras(spec: SwitchSpec) -> dict[str, str]:
    """PoE, LLDP and health rows, where the spec asks for them."""
    rows: dict[str, str] = {}
    if spec.poe:
        for p in spec.port_specs():
            if p.role in ("uplink", "downlink"):
                continue
            detection = 3 if _powered(p) else (1 if p.role == "shutdown" else 2)
            idx = f"1.{p.index}"  # (group 1, port = ifIndex)
            rows.update({f"{PETH_PORT}.3.{idx}": f"2|{1 if p.admin_up else 2}",
                         f"{PETH_PORT}.6.{idx}": f"2|{detection}",
                         f"{PETH_PORT}.10.{idx}": f"2|{4 if p.role == 'ap' else 2}"})
        rows.update({f"{PETH_MAIN}.2.1": f"66|{POE_BUDGET_W}", f"{PETH_MAIN}.3.1": "2|1",
                     f"{PETH_MAIN}.4.1": f"66|{spec.poe_consumption_w()}", f"{PETH_MAIN}.5.1": "2|80"})
    if spec.lldp:
        for p in spec.port_specs():
            rows.update({f"{LLDP_LOC_PORT}.2.{p.index}": "2|5", f"{LLDP_LOC_PORT}.3.{p.index}": _str(p.name),
                         f"{LLDP_LOC_PORT}.4.{p.index}": _str(p.descr)})
        for name, (sysname, port) in spec.lldp_neighbors().items():
            p = spec.port(name)
            idx = f"0.{p.index}.1"  # (timeMark, localPortNum, remIndex)
            rows.update({
                f"{LLDP_REM}.4.{idx}": "2|4", f"{LLDP_REM}.5.{idx}": f"4x|{_mac(spec, 100 + p.index)}",
                f"{LLDP_REM}.6.{idx}": "2|5", f"{LLDP_REM}.7.{idx}": _str(port),
                f"{LLDP_REM}.8.{idx}": _str(f"{sysname} {port}"), f"{LLDP_REM}.9.{idx}": _str(sysname),
            })
    if spec.health:
        for cpu, load in enumerate(CPU_LOADS, start=1):
            rows[f"1.3.6.1.2.1.25.3.3.1.2.{cpu}"] = f"2|{load}"
        rows.update({"1.3.6.1.2.1.99.1.1.1.1.1": "2|8", "1.3.6.1.2.1.99.1.1.1.2.1": "2|9",
                     "1.3.6.1.2.1.99.1.1.1.3.1": "2|1", "1.3.6.1.2.1.99.1.1.1.4.1": f"2|{TEMP_TENTHS_C}",
                     "1.3.6.1.2.1.99.1.1.1.5.1": "2|1"})
    return rows


def _oid_key(line: str) -> tuple[int, ...]:
    return tuple(int(x) for x in line.split("|", 1)[0].split("."))


def render(spec: SwitchSpec) -> str:
    """The whole recording as text, one ``OID|tag|value`` per line, in OID order."""
    n = spec.ports
    rows = {
        f"{SYSTEM}.1.0": _str(f"wardwatch simulated {n}-port switch {spec.name}, firmware 1.0"),
        f"{SYSTEM}.2.0": f"6|{SIM_ENTERPRISE_OID}.1.{n}",
        f"{SYSTEM}.3.0": "67:numeric|rate=100",
        f"{SYSTEM}.4.0": _str(spec.contact),
        f"{SYSTEM}.5.0": _str(spec.name),
        f"{SYSTEM}.6.0": _str(spec.location or "unknown"),
        f"{SYSTEM}.7.0": "2|6",
        IF_NUMBER: f"2|{n}",
        f"{ENT_PHYSICAL_ENTRY}.2.1": _str(f"{n}-port switch chassis"),
        f"{ENT_PHYSICAL_ENTRY}.5.1": "2|3",  # chassis
        f"{ENT_PHYSICAL_ENTRY}.7.1": _str(spec.name),
        f"{ENT_PHYSICAL_ENTRY}.11.1": _str(f"SIM{spec.seed:04d}{n:02d}"),
    }
    for p in spec.port_specs():
        i = p.index
        in_err_initial = 3 * i if p.in_err_ps else 0
        rows.update(
            {
                f"{IF_ENTRY}.1.{i}": f"2|{i}",
                f"{IF_ENTRY}.2.{i}": _str(p.descr),
                f"{IF_ENTRY}.3.{i}": "2|6",
                f"{IF_ENTRY}.4.{i}": "2|1500",
                f"{IF_ENTRY}.5.{i}": f"66|{min(p.speed_mbps * 1_000_000, GAUGE32_MAX)}",
                f"{IF_ENTRY}.6.{i}": f"4x|{_mac(spec, i)}",
                f"{IF_ENTRY}.7.{i}": f"2|{1 if p.admin_up else 2}",
                f"{IF_ENTRY}.8.{i}": f"2|{1 if p.oper_up else 2}",
                f"{IF_ENTRY}.9.{i}": "67|0",
                f"{IF_ENTRY}.10.{i}": _counter(65, p.in_bytes_ps, p.in_initial, wrap32=True),
                f"{IF_ENTRY}.13.{i}": _counter(65, p.in_err_ps / 2, 0),
                f"{IF_ENTRY}.14.{i}": _counter(65, p.in_err_ps, in_err_initial),
                f"{IF_ENTRY}.16.{i}": _counter(65, p.out_bytes_ps, p.out_initial, wrap32=True),
                f"{IF_ENTRY}.19.{i}": _counter(65, p.out_err_ps / 2, 0),
                f"{IF_ENTRY}.20.{i}": _counter(65, p.out_err_ps, 0),
                f"{IFX_ENTRY}.1.{i}": _str(p.name),
                f"{IFX_ENTRY}.6.{i}": _counter(70, p.in_bytes_ps, p.in_initial),
                f"{IFX_ENTRY}.10.{i}": _counter(70, p.out_bytes_ps, p.out_initial),
                f"{IFX_ENTRY}.15.{i}": f"66|{p.speed_mbps}",
                f"{IFX_ENTRY}.18.{i}": _str(p.alias),
                f"{IFX_ENTRY}.19.{i}": "67|0",
            }
        )
    rows.update(_extras(spec))
    lines = sorted((f"{oid}|{value}" for oid, value in rows.items()), key=_oid_key)
    return "\n".join(lines) + "\n"


def replace_rows(recording: str, rows: dict[str, str]) -> str:
    """A recording with some rows changed or added: ``rows`` maps an OID to its new
    ``tag|value`` (e.g. ``"4|nan"`` for an OCTET STRING where a counter belongs). For
    recordings of broken devices: wrong types, text numbers, endless strings."""
    lines = {line.split("|", 1)[0]: line for line in recording.splitlines() if line}
    for oid, value in rows.items():
        lines[oid] = f"{oid}|{value}"
    return "\n".join(sorted(lines.values(), key=_oid_key)) + "\n"


def silent(recording: str) -> str:
    """The recording of a device that has died: every row, and one past the last OID a walk
    can reach, answers nothing (snmpsim drops the response), so a GET or a walk times out.
    snmpsim re-reads a data file whose mtime changed, so writing this over a served file
    kills that one device; writing the original back revives it (its counters never stopped:
    they are ``rate x seconds since snmpsim started``)."""
    oids = [line.split("|", 1)[0] for line in recording.splitlines() if line]
    return "\n".join(f"{oid}|{SILENT}" for oid in [*oids, "2.0.0"]) + "\n"


def poe_overrun(spec: SwitchSpec, recording: str, cut: list[str]) -> str:
    """The recording of ``spec`` once its PoE budget is overrun: the PSE draws its whole budget
    and has shed the ports ``cut`` (ifNames): detection ``fault`` (4), link down. The devices
    on them lose power, which their own simulators must show (they stop answering)."""
    rows = {f"{PETH_MAIN}.4.1": f"66|{POE_BUDGET_W}"}
    for name in cut:
        i = spec.port(name).index
        rows.update({f"{IF_ENTRY}.8.{i}": "2|2", f"{PETH_PORT}.6.1.{i}": "2|4"})
    return replace_rows(recording, rows)


def octets(text: str | bytes) -> str:
    """An OCTET STRING ``tag|value`` for any text: newlines, NULs, 10 kB of it."""
    raw = text.encode() if isinstance(text, str) else text
    return f"4x|{raw.hex()}"
