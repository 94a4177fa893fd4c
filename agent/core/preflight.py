"""``wardwatch-agent check``'s setup section: what must be right on this box before any
reading can leave it, one line each, ``ok``/``warn``/``FAIL``, with a ``hint:`` on every line
that is not ok (docs/agent.md, "check").

- ``config``: the file, agent id, ward and device count (a config that does not load never
  gets here: the CLI exits 2 naming the key);
- ``outbox``: its directory exists (or can be made) and takes a file from the current user,
  and an existing outbox opens, read-only, with how many batches wait in it;
- ``icmp``: how the pinger sends (agent/core/icmp.py), or why it cannot;
- ``broker ...``: step by step, stopping at the first failure: the name (``dns``), the TCP
  connection (``tcp``), TLS or plain MQTT as configured (``tls``/``plain``: a TLS port
  under ``tls: false`` and a plain port under ``tls:`` are both named), the MQTT 5 login
  with the configured user (``login``) and a subscription to the agent's own ``stored``
  topic, the one topic the ACL lets an agent read (``acl``). Each step is bounded by
  :data:`STEP` seconds. Nothing is ever published (a publish would reach the collectors),
  and the client id is never the agent's own (that would take over a running agent's
  session).

Every line goes through :func:`wardwatch.redact.redact` when printed (:func:`format_lines`).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import ipaddress
import os
import pwd
import socket
import sqlite3
import ssl
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from paho.mqtt.client import Client, ConnectFlags, MQTTMessage
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from wardwatch import wire
from wardwatch.agent.core.config import AgentConfig, AgentMqtt, AgentSection
from wardwatch.agent.core.icmp import Pinger
from wardwatch.agent.core.outbox import Outbox, OutboxError
from wardwatch.config import TlsSection, is_loopback
from wardwatch.mqtt import make_client, tls_context
from wardwatch.redact import redact

if TYPE_CHECKING:
    from cryptography import x509  # imported when a certificate is read: `run` never needs it

STEP = 3.0  # seconds for each broker step (name, TCP, TLS, CONNACK, SUBACK)
WATERMARK_WAIT = 0.5  # seconds for a retained stored watermark after the SUBACK
CERT_WARN_DAYS = 30  # a broker certificate that expires sooner is a warn
STALE_BATCH = 3600.0  # seconds: an outbox batch older than this is a warn (nothing stores them)

State = Literal["ok", "warn", "FAIL"]
BROKER_CONFIG = "`wardwatch-collector broker-config`"


@dataclass(frozen=True, slots=True)
class Line:
    state: State
    name: str  # config, outbox, icmp, broker dns, broker tcp, ...
    text: str
    hint: str = ""

    @property
    def failed(self) -> bool:
        return self.state == "FAIL"


def format_lines(lines: Sequence[Line]) -> str:
    width = max((len(x.name) for x in lines), default=0)
    out: list[str] = []
    for x in lines:
        out.append(f"{x.state:<4}  {x.name:<{width}}  {x.text}")
        if x.hint and x.state != "ok":
            out.append(f"{'':<4}  {'':<{width}}  hint: {x.hint}")
    return redact("\n".join(out))


async def setup(cfg: AgentConfig, *, pinger: Pinger, source: Path | None = None) -> list[Line]:
    lines = [config_line(cfg, source), await outbox_line(cfg), icmp_line(cfg, pinger)]
    return lines + await broker_lines(cfg.agent, cfg.mqtt)


# ------------------------------------------------------------------------ config, icmp


def config_line(cfg: AgentConfig, source: Path | None) -> Line:
    kinds: dict[str, int] = {}
    for d in cfg.devices:
        kinds[d.kind] = kinds.get(d.kind, 0) + 1
    counts = ", ".join(f"{n} {k}{'es' if k == 'switch' and n != 1 else '' if n == 1 else 's'}"
                       for k, n in kinds.items())  # fmt: skip
    where = f"{source}: " if source is not None else ""
    n = len(cfg.devices)
    text = f"{where}agent {cfg.agent.id}, ward {cfg.agent.ward}, {n} device{'' if n == 1 else 's'}"
    if not cfg.devices:
        return Line("warn", "config", text, "no devices: add them under devices: (wardwatch-agent discover writes "
                                            "entries to paste)")
    return Line("ok", "config", f"{text} ({counts})")


def icmp_line(cfg: AgentConfig, pinger: Pinger) -> Line:
    if pinger.available:
        return Line("ok", "icmp", pinger.mode)
    users = [d.id for d in cfg.devices if d.icmp]
    if not users:
        return Line("ok", "icmp", "off, and no device asks for it")
    return Line("warn", "icmp", f"off: devices are polled without ping ({len(users)} ask for it)",
                "the systemd unit grants CAP_NET_RAW (AmbientCapabilities=CAP_NET_RAW); by hand, run as the "
                "service user with `sysctl -w net.ipv4.ping_group_range='0 2147483647'`")  # fmt: skip


# ------------------------------------------------------------------------ outbox


def _user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return f"uid {os.geteuid()}"


def _try_write(directory: Path) -> str | None:
    """None when the current user can create a file in ``directory``, else why not.
    A real file, not os.access: root passes every mode bit, not a read-only mount."""
    try:
        fd, name = tempfile.mkstemp(dir=directory, prefix=".wardwatch-check-")
    except OSError as exc:
        return exc.strerror or type(exc).__name__
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(name)
    return None


class _ReadOnlyOutbox(Outbox):
    """The outbox, opened read-only: no schema written, no -wal or -shm file made (a check
    run as root must not leave root-owned files beside the service's outbox)."""

    def _connect(self, schema: str) -> sqlite3.Connection:
        wal = self.path.with_name(self.path.name + "-wal")
        # No WAL file: nobody has it open, and immutable reads it without making one.
        mode = "mode=ro" if wal.exists() else "immutable=1"
        db = sqlite3.connect(f"file:{quote(str(self.path.resolve()))}?{mode}", uri=True, check_same_thread=False,
                             isolation_level=None)  # fmt: skip
        try:
            tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        except sqlite3.Error:
            db.close()
            raise
        if "batches" not in tables:
            db.close()
            raise sqlite3.DatabaseError("no batches table: not a wardwatch outbox")
        return db


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


async def outbox_line(cfg: AgentConfig) -> Line:
    path = cfg.outbox.path
    d = path.parent
    user = _user()
    make_dir = (f"under systemd the unit's StateDirectory=wardwatch makes /var/lib/wardwatch for the service user; "
                f"by hand: mkdir -p {d} && chown <service user>: {d}")  # fmt: skip
    if not d.exists():
        parent = next((p for p in d.parents if p.exists()), None)
        if parent is not None and parent.is_dir() and _try_write(parent) is None:
            return Line("warn", "outbox", f"{d} does not exist yet; the agent makes it at start", make_dir)
        return Line("FAIL", "outbox", f"{d} does not exist, and {user} cannot make it", make_dir)
    if not d.is_dir():
        return Line("FAIL", "outbox", f"{d} is not a directory (outbox.path: {path})",
                    "outbox.path must be a file in a directory, e.g. /var/lib/wardwatch/outbox.db")
    problem = _try_write(d)
    if problem is not None:
        return Line("FAIL", "outbox", f"{d}: {user} cannot write there ({problem})",
                    f"{make_dir}; a read-only mount (ProtectSystem=strict) needs the directory in "
                    "StateDirectory= or ReadWritePaths=")  # fmt: skip
    if path.is_dir():
        return Line("FAIL", "outbox", f"{path} is a directory, not a file", "outbox.path names the SQLite file, "
                                                                           "e.g. /var/lib/wardwatch/outbox.db")
    if not path.exists():
        return Line("ok", "outbox", f"{d} is writable by {user}; {path.name} is made at the first start")
    if not os.access(path, os.R_OK | os.W_OK):
        return Line("FAIL", "outbox", f"{path}: {user} cannot read and write it",
                    f"chown <service user>: {path}*, or run check as the user the agent runs as")
    box = _ReadOnlyOutbox(path, agent=cfg.agent.id, ward=cfg.agent.ward)
    try:
        async with box:
            stats = await box.stats()
    except OutboxError as exc:
        return Line("FAIL", "outbox", str(exc).removeprefix("outbox.path: "),
                    f"not an outbox file, or damaged: stop the agent and move {path.name} aside; the agent makes a "
                    "new one (what the old one held is not sent)")  # fmt: skip
    waiting = f"{stats.depth} batch waits in it" if stats.depth == 1 else f"{stats.depth} batches wait in it"
    if stats.depth:
        waiting += f", the oldest from {_age(stats.oldest_s)} ago"
    if stats.dropped_readings:
        waiting += f"; {stats.dropped_readings} readings dropped by its bounds so far"
    full = stats.bytes / (cfg.outbox.max_mb * 1024 * 1024)
    if stats.oldest_s > STALE_BATCH or full > 0.8:
        waiting += f"; {full:.0%} of outbox.max_mb" if full > 0.8 else ""
        return Line("warn", "outbox", f"{path} opens; {waiting}",
                    "batches leave the outbox only once a collector has stored them: see the broker lines below, "
                    "then the collectors (wardwatch-collector) and InfluxDB; past outbox.max_mb or outbox.max_age "
                    "the oldest are dropped")  # fmt: skip
    return Line("ok", "outbox", f"{path} opens; {waiting}")


# ------------------------------------------------------------------------ broker


@dataclass
class _Ctx:
    agent: AgentSection
    mqtt: AgentMqtt
    lines: list[Line]

    @property
    def where(self) -> str:
        return f"{self.mqtt.host}:{self.mqtt.port}"

    def add(self, state: State, step: str, text: str, hint: str = "") -> bool:
        self.lines.append(Line(state, f"broker {step}", text, hint))
        return state != "FAIL"


async def broker_lines(agent: AgentSection, mqtt: AgentMqtt) -> list[Line]:
    """The broker steps, in a thread of their own: the device polls that run beside them
    may keep the event loop (and the default executor) busy, and no step's time bound may
    count that."""
    ctx = _Ctx(agent, mqtt, [])
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def finish(exc: BaseException | None) -> None:
        if not done.done():
            done.set_result(None) if exc is None else done.set_exception(exc)

    def work() -> None:
        error: BaseException | None = None
        try:
            infos = _resolve(ctx)
            if infos is not None:
                _after_dns(ctx, infos)
        except Exception as exc:  # a bug: handed to the caller, as to_thread would
            error = exc
        loop.call_soon_threadsafe(finish, error)

    threading.Thread(target=work, name="check-broker", daemon=True).start()
    await done
    return ctx.lines


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


Info = tuple[int, int, int, Any]


def _getaddrinfo(host: str, port: int) -> list[Info]:
    """getaddrinfo bounded by STEP: a name's lookup runs in a daemon thread (a resolver that
    never answers must not hold check up, nor its exit)."""
    if _is_address(host):
        raw = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        return [(int(f), int(t), p, sa) for f, t, p, _c, sa in raw]
    box: list[list[Info] | OSError] = []

    def lookup() -> None:
        try:
            box.append([(int(f), int(t), p, sa)
                        for f, t, p, _c, sa in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)])
        except OSError as exc:
            box.append(exc)

    t = threading.Thread(target=lookup, name="check-dns", daemon=True)
    t.start()
    t.join(STEP)
    if not box:
        raise TimeoutError
    if isinstance(box[0], OSError):
        raise box[0]
    return box[0]


def _resolve(ctx: _Ctx) -> list[Info] | None:
    host = ctx.mqtt.host.removeprefix("[").removesuffix("]")
    try:
        infos = _getaddrinfo(host, ctx.mqtt.port)[:3]
    except OSError as exc:  # TimeoutError too
        why = "no answer in time" if isinstance(exc, TimeoutError) else (
            exc.strerror if isinstance(exc, socket.gaierror) and exc.strerror else str(exc))
        ctx.add("FAIL", "dns", f"mqtt.host {host} does not resolve: {why}",
                "check the name and this box's DNS (/etc/resolv.conf), or add it to /etc/hosts; it must stay the "
                f"name the broker's certificate was made for ({BROKER_CONFIG} --name)")  # fmt: skip
        return None
    if not _is_address(host):
        ctx.add("ok", "dns", f"{host} is {', '.join(dict.fromkeys(str(i[3][0]) for i in infos))}")
    return infos


def _open(infos: list[Info]) -> tuple[socket.socket | None, list[OSError]]:
    """A TCP connection to the first of ``infos`` that takes one (STEP s each); the errors."""
    errors: list[OSError] = []
    for family, kind, proto, sa in infos:
        sock = socket.socket(family, kind, proto)
        sock.settimeout(STEP)
        try:
            sock.connect(sa)
        except OSError as err:
            sock.close()
            errors.append(err)
            continue
        return sock, errors
    return None, errors


def _connect(ctx: _Ctx, infos: list[Info]) -> socket.socket | None:
    sock, errors = _open(infos)
    if sock is not None:
        addr, port = sock.getpeername()[:2]
        ctx.add("ok", "tcp", f"connected to {addr} port {port}")
        return sock
    exc = errors[0]
    port = ctx.mqtt.port
    if isinstance(exc, ConnectionRefusedError):
        ctx.add("FAIL", "tcp", f"{ctx.where}: connection refused",
                f"nothing listens on port {port}: is the broker running (systemctl status mosquitto)? is mqtt.port "
                f"its listener (broker-config's --listen, 8883 by default)? or a firewall rejects port {port}")
    elif isinstance(exc, TimeoutError):
        ctx.add("FAIL", "tcp", f"{ctx.where}: no answer in {STEP:g} s",
                f"a firewall drops TCP port {port} on the way, or there is no route to {ctx.mqtt.host}; "
                f"try `nc -vz {ctx.mqtt.host} {port}` from this box")  # fmt: skip
    else:
        ctx.add("FAIL", "tcp", f"{ctx.where}: {exc.strerror or exc}",
                f"this box has no route to {ctx.mqtt.host}: check its address, gateway and cable")
    return None


def _after_dns(ctx: _Ctx, infos: list[Info]) -> None:
    sock = _connect(ctx, infos)
    if sock is None:
        return
    tls = ctx.mqtt.tls
    with sock:
        good = _tls(ctx, sock, infos, tls) if tls else _plain(ctx, sock, infos)
    if good:
        _login(ctx)


# A minimal MQTT 3.1.1 CONNECT: no user, no password, an empty client id, clean session.
# Every broker answers it with a CONNACK (0x20), accepted or not; nothing else does.
_PROBE = b"\x10\x0c\x00\x04MQTT\x04\x02\x00\x0a\x00\x00"
_DISCONNECT = b"\xe0\x00"


def _speaks_mqtt(sock: socket.socket) -> bool:
    try:
        sock.sendall(_PROBE)
        head = sock.recv(4)
    except OSError:
        return False
    with contextlib.suppress(OSError):
        sock.sendall(_DISCONNECT)
    return head[:1] == b"\x20"


def _fresh(infos: list[Info]) -> socket.socket | None:
    return _open(infos)[0]


def _speaks_tls(infos: list[Info], host: str) -> x509.Certificate | None:
    """The certificate of a TLS server on the port (unverified: only to name what it is)."""
    from cryptography import x509

    sock = _fresh(infos)
    if sock is None:
        return None
    insecure = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    try:
        with sock, insecure.wrap_socket(sock, server_hostname=host) as ss:
            der = ss.getpeercert(binary_form=True)
    except (OSError, ValueError):
        return None
    return x509.load_der_x509_certificate(der) if der else None


def _names(cert: x509.Certificate) -> list[str]:
    from cryptography import x509

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [str(a.value) for a in cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)]
    return [*san.get_values_for_type(x509.DNSName), *(str(a) for a in san.get_values_for_type(x509.IPAddress))]


def _plain(ctx: _Ctx, sock: socket.socket, infos: list[Info]) -> bool:
    setting = "tls: false" if ctx.mqtt.tls is False else "no tls: section"
    if _speaks_mqtt(sock):
        if ctx.mqtt.tls is False and not is_loopback(ctx.mqtt.host):
            return ctx.add("warn", "plain", f"plain MQTT ({setting}): the login and every reading cross the "
                                            "network in clear",
                           f"use the broker's TLS listener with the tls: section of credentials/{ctx.agent.id}.yaml "
                           f"from {BROKER_CONFIG}")  # fmt: skip
        return ctx.add("ok", "plain", f"port {ctx.mqtt.port} speaks plain MQTT ({setting})")
    cert = _speaks_tls(infos, ctx.mqtt.host)
    if cert is not None:
        return ctx.add("FAIL", "plain", f"port {ctx.mqtt.port} speaks TLS, but the config has {setting}",
                       f"set mqtt.tls: {{ca_file: ...}} as in credentials/{ctx.agent.id}.yaml from {BROKER_CONFIG} "
                       "(the CA is its tls/ca.pem)")  # fmt: skip
    return ctx.add("FAIL", "plain", f"port {ctx.mqtt.port} does not answer MQTT",
                   "is mqtt.port the broker's MQTT listener, and is it Mosquitto there?")


_HOST_MISMATCH = (62, 64)  # X509_V_ERR_HOSTNAME_MISMATCH, X509_V_ERR_IP_ADDRESS_MISMATCH
_EXPIRED, _NOT_YET = 10, 9
_UNTRUSTED = (2, 18, 19, 20, 21, 24)  # no issuer, self-signed, untrusted chain


def _tls(ctx: _Ctx, sock: socket.socket, infos: list[Info], tls: TlsSection) -> bool:
    host = ctx.mqtt.host.removeprefix("[").removesuffix("]")
    wrong_ca = (f"tls.ca_file must be the ca.pem {BROKER_CONFIG} wrote for this broker (its tls/ca.pem); after a "
                "--rotate there, copy the new one")  # fmt: skip
    try:
        context = tls_context(tls)
    except (OSError, ssl.SSLError) as exc:
        what = f"tls.ca_file {tls.ca_file}" if tls.ca_file and not Path(tls.ca_file).is_file() else (
            "tls.ca_file, tls.cert_file or tls.key_file")
        return ctx.add("FAIL", "tls", f"cannot load {what}: {getattr(exc, 'strerror', None) or exc}",
                       f"copy tls/ca.pem from {BROKER_CONFIG}'s output to this box and name it in tls.ca_file")
    try:
        with context.wrap_socket(sock, server_hostname=host) as ss:
            peer = ss.getpeercert() or {}
    except ssl.SSLCertVerificationError as exc:
        cert = _speaks_tls(infos, host)
        names = ", ".join(_names(cert)) if cert is not None else "?"
        if exc.verify_code in _HOST_MISMATCH:
            return ctx.add("FAIL", "tls", f"the broker's certificate is for {names}, not {host}",
                           f"mqtt.host must be the name broker-config was given with --name (one of {names}), or run "
                           f"{BROKER_CONFIG} again with --name {host} and restart Mosquitto")  # fmt: skip
        if exc.verify_code == _EXPIRED:
            ended = cert.not_valid_after_utc.date().isoformat() if cert is not None else "?"
            return ctx.add("FAIL", "tls", f"the broker's certificate expired on {ended}",
                           f"run {BROKER_CONFIG} again on the broker (it renews the certificate) and restart "
                           "Mosquitto; check this box's clock too (`date`)")  # fmt: skip
        if exc.verify_code == _NOT_YET:
            return ctx.add("FAIL", "tls", "the broker's certificate is not valid yet",
                           "this box's clock is wrong: set it (`timedatectl`, NTP)")
        if exc.verify_code in _UNTRUSTED:
            source = f"tls.ca_file {tls.ca_file}" if tls.ca_file else "the system's CAs (no tls.ca_file)"
            return ctx.add("FAIL", "tls", f"certificate verify failed: {exc.verify_message}; not signed by {source}",
                           wrong_ca)
        return ctx.add("FAIL", "tls", f"certificate verify failed: {exc.verify_message}", wrong_ca)
    except (OSError, ssl.SSLError) as exc:
        # Not TLS on the other end: a plain MQTT broker closes on our ClientHello, which it
        # reads as a malformed CONNECT.
        plain = _fresh(infos)
        if plain is not None:
            with plain:
                if _speaks_mqtt(plain):
                    return ctx.add("FAIL", "tls", f"port {ctx.mqtt.port} speaks plain MQTT, not TLS",
                                   "mqtt.port must be the broker's TLS listener (broker-config's --listen, 8883 by "
                                   "default); `tls: false` only for a broker on this box or a trusted network")
        why = "no answer in time" if isinstance(exc, TimeoutError) else (
            getattr(exc, "reason", None) or exc.strerror or type(exc).__name__)
        return ctx.add("FAIL", "tls", f"TLS handshake with {ctx.where} failed: {why}",
                       "is mqtt.port the broker's TLS listener?")
    until = dt.datetime.strptime(str(peer.get("notAfter", "")), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC) \
        if peer.get("notAfter") else None  # fmt: skip
    checked = "host name not checked (tls.insecure)" if tls.insecure else f"for {host}"
    text = f"certificate {checked}, signed by {tls.ca_file or 'a system CA'}"
    if until is not None:
        left = until - dt.datetime.now(dt.UTC)
        if left < dt.timedelta(days=CERT_WARN_DAYS):
            return ctx.add("warn", "tls", f"{text}; it expires on {until.date()}",
                           f"run {BROKER_CONFIG} again on the broker before then, and restart Mosquitto")
        text += f", valid until {until.date()}"
    return ctx.add("ok", "tls", text)


class _Waiter:
    """The CONNACK and SUBACK of a paho client, from its thread."""

    def __init__(self) -> None:
        self.connack: ReasonCode | None = None
        self.suback: list[ReasonCode] | None = None
        self.connected, self.subscribed, self.closed = threading.Event(), threading.Event(), threading.Event()
        self.stored = threading.Event()
        self.watermark: int | None = None

    def on_connect(self, _c: Client, _u: Any, _f: ConnectFlags, rc: ReasonCode, _p: Properties | None) -> None:
        self.connack = rc
        self.connected.set()

    def on_subscribe(self, _c: Client, _u: Any, _mid: int, rcs: list[ReasonCode], _p: Properties | None) -> None:
        self.suback = rcs
        self.subscribed.set()

    def on_message(self, _c: Client, _u: Any, msg: MQTTMessage) -> None:
        with contextlib.suppress(wire.WireError):
            self.watermark = wire.decode_stored(msg.topic, bytes(msg.payload)).watermark
        self.stored.set()

    def on_disconnect(self, *_a: Any) -> None:
        self.closed.set()
        self.connected.set()  # a close before the CONNACK ends the wait too


def _login(ctx: _Ctx) -> None:
    mqtt, agent = ctx.mqtt, ctx.agent
    # Never the agent's own client id: connecting with it would take over a running agent's session.
    client = make_client(mqtt.model_copy(update={"client_id": None}),
                         client_id=f"wardwatch-check-{agent.id}-{os.getpid()}")  # fmt: skip
    client.connect_timeout = STEP
    w = _Waiter()
    client.on_connect, client.on_subscribe, client.on_disconnect = w.on_connect, w.on_subscribe, w.on_disconnect
    client.on_message = w.on_message
    user = mqtt.username or "(no user)"
    try:
        client.connect(mqtt.host, mqtt.port, keepalive=10, clean_start=True)
    except (OSError, ValueError) as exc:
        ctx.add("FAIL", "login", f"{ctx.where}: {exc}", "run check again; if it persists, see the broker's log")
        return
    client.loop_start()
    try:
        _login_steps(ctx, client, w, user)
    finally:
        client.disconnect()
        client.loop_stop()


def _login_steps(ctx: _Ctx, client: Client, w: _Waiter, user: str) -> None:
    agent = ctx.agent
    creds = f"credentials/{agent.id}.yaml and {agent.id}.password from {BROKER_CONFIG}"
    if not w.connected.wait(STEP + 1) or w.connack is None:
        ctx.add("FAIL", "login", f"{ctx.where} closed the connection or sent no CONNACK in {STEP + 1:g} s",
                "see the broker's log (journalctl -u mosquitto); a broker before Mosquitto 2.0 may not speak MQTT 5")
        return
    rc = w.connack
    if rc.is_failure:
        name = rc.getName()
        if rc.value in (0x86, 0x87, 0x8A) and not ctx.mqtt.username:  # an anonymous login refused
            hint = f"mqtt.username and the password are not set: use {creds}"
        elif rc.value in (0x86, 0x87):  # Bad user name or password; Not authorized (Mosquitto 2.0 says this)
            hint = (f"the user name or password is wrong, or the user is not in broker-config's inventory "
                    f"(agents: [{{id: {agent.id}, ward: {agent.ward}}}]): use {creds}; a --rotate there makes new "
                    "passwords")  # fmt: skip
        elif rc.value == 0x8A:  # Banned
            hint = "the broker bans this client: see its configuration and log"
        elif rc.value == 0x84:  # Unsupported protocol version
            hint = "the broker does not speak MQTT 5: wardwatch needs Mosquitto 2.0 or newer"
        else:
            hint = "see the broker's log (journalctl -u mosquitto)"
        ctx.add("FAIL", "login", f"{user} refused: {name}", hint)
        return
    ctx.add("ok", "login", f"{user} logged in (MQTT 5)")
    topic = wire.stored_topic(agent.ward, agent.id)
    acl_hint = (f"broker-config's inventory must list this agent as {{id: {agent.id}, ward: {agent.ward}}}, and "
                "agent.id and agent.ward here must match it; run it again and restart Mosquitto")  # fmt: skip
    if ctx.mqtt.username is not None and ctx.mqtt.username != agent.id:
        # broker-config's ACL grants user X the topics of agent X only: every batch would be refused.
        ctx.add("FAIL", "acl", f"mqtt.username {ctx.mqtt.username} is not agent.id {agent.id}",
                f"broker-config makes each agent's user its id: use credentials/{agent.id}.yaml, or fix agent.id")
        return
    client.subscribe(topic, qos=1)
    if not w.subscribed.wait(STEP) or not w.suback:
        ctx.add("FAIL", "acl", f"no SUBACK for {topic} in {STEP:g} s", "see the broker's log (journalctl -u mosquitto)")
        return
    granted = w.suback[0]
    if granted.is_failure:
        ctx.add("FAIL", "acl", f"may not read {topic}: {granted.getName()}", acl_hint)
        return
    # Mosquitto 2.0 grants every subscription and applies its ACL to each message: only the
    # collectors' retained watermark, when there is one, proves that this agent may read it.
    if w.stored.wait(WATERMARK_WAIT) and w.watermark is not None:
        ctx.add("ok", "acl", f"reads {topic}: collectors have stored this agent's batches below seq {w.watermark}")
    else:
        ctx.add("ok", "acl", f"subscribed to {topic}; no stored watermark yet (collectors set it when they store "
                             "this agent's first batch)")


# ------------------------------------------------------------------------ device hints


def _source_address(host: str, port: int) -> str:
    """This box's address toward ``host`` (an address, not a name: nothing is resolved or sent)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM, flags=socket.AI_NUMERICHOST)
        with socket.socket(infos[0][0], socket.SOCK_DGRAM) as s:
            s.connect(infos[0][4])
            return str(s.getsockname()[0])
    except (OSError, IndexError):
        return "this box's address"


_CAMERA_HINTS = {
    "auth": "the camera refuses the ONVIF user or password of auth.{auth}.onvif; many cameras keep ONVIF users "
            "apart from web users: make one with ONVIF rights",
    "clock_skew_auth": "the camera's clock is off: give it an NTP server",
    "bad_xml": "the camera's ONVIF answer is not usable XML: update its firmware",
    "onvif_error": "ONVIF fails on the camera (see DETAIL): enable ONVIF and its media profiles, or update firmware",
    "rtsp_401": "the stream refuses the ONVIF user: give it the right to view streams",
    "rtsp_404": "the camera's stream URI does not exist: check its media profile and streams",
    "rtsp_timeout": "RTSP (port 554) does not answer: a firewall on the way, or RTSP is off on the camera",
    "rtsp_error": "the stream fails (see DETAIL); for Basic-only cameras set allow_basic: true in auth.{auth}.onvif",
    "no_snapshot_uri": "the camera gives no snapshot URI: enable snapshots on it, or set camera.snapshot: false",
    "snapshot_failed": "the snapshot fails (see DETAIL); for Basic-only cameras set allow_basic: true",
    "frozen": "the image does not change: check the lens and reboot the camera",
}


def device_hint(cfg: AgentConfig, device_id: str, reason: str, status: str) -> str:
    """What to do about a device that failed, by its STATUS (docs/agent.md, docs/cameras.md)."""
    dev = next(d for d in cfg.devices if d.id == device_id)
    auth = cfg.auth.get(dev.auth)
    if reason in ("poe_lost", "port_down") and dev.feed is not None:
        what = "gives no PoE" if reason == "poe_lost" else "has no link"
        return (f"its feed port {dev.feed.switch} {dev.feed.port} {what}: check the cable, the port and the switch's "
                "PoE budget")  # fmt: skip
    if reason == "internal_error":
        return "a wardwatch bug, not the device: report it with this line and `--log-level DEBUG` output"
    if dev.kind == "camera":
        port = dev.port or 80
        if reason in ("offline", "timeout"):
            cls = status.partition(" (")[2].rstrip(")") or reason
            if cls == "refused":
                return f"nothing listens on {dev.host}:{port}: check devices[].port and that ONVIF is on in the camera"
            return (f"no ONVIF answer from {dev.host}:{port}: check the address, the cable, and that this box "
                    f"({_source_address(dev.host, port)}) may reach the camera's network")  # fmt: skip
        return _CAMERA_HINTS.get(reason, "see DETAIL; docs/cameras.md lists every reason").format(auth=dev.auth)
    port = dev.port or 161
    snmp = auth.snmp if auth is not None else None
    if reason == "timeout":
        return (f"no SNMP answer: check the address {dev.host}, that UDP {port} is open on the way, and that the "
                f"device's SNMP ACL allows this box ({_source_address(dev.host, port)})")  # fmt: skip
    if reason == "auth":
        if snmp is not None and snmp.version == "3":
            return (f"check user, auth and priv protocols and keys of auth.{dev.auth}.snmp against the device; "
                    "after a device reboot a stale engine time clears on the next poll")  # fmt: skip
        return f"the device does not accept the community of auth.{dev.auth}.snmp, or its ACL refuses this box"
    if reason == "unreachable":
        return f"{dev.host} does not resolve or has no route: check devices[].host and this box's network"
    if reason == "no_such_object":
        chosen = f"profile {dev.profile}" if dev.profile else "its profile"
        return (f"the device lacks what {chosen} reads: pick another profile, or remove profile: to match it by "
                "sysObjectID; a device that lacks sysUpTime needs its SNMP view widened")  # fmt: skip
    if reason == "protocol":
        return f"an SNMP error or a garbled answer (see DETAIL): check the SNMP version of auth.{dev.auth}.snmp"
    return "see DETAIL"
