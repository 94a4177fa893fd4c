"""``wardwatch-collector broker-config``: everything a Mosquitto 2.0 broker needs to admit
wardwatch's agents and collectors, and nobody else (docs/security.md).

From an inventory (``agents: [{id, ward}]``, ``collectors: [{id}]``) it writes into DIR:

- ``mosquitto.conf``: one TLS listener, ``allow_anonymous false``, the password file, the
  ACL, the queue limits of configs/mosquitto.conf and persistence;
- ``tls/``: a private CA (``ca.pem``, ``ca.key``), the server certificate (``server.pem``,
  ``server.key``; SAN: the broker's name, the listen address, localhost, 127.0.0.1) and,
  for entries with ``client_cert: true``, ``{id}.pem`` and ``{id}.key``;
- ``passwd``: hashed by Debian's ``mosquitto_passwd -U`` (the passwords never appear on a
  command line);
- ``acl``: each agent writes only its own readings, status, events and inventory (under its
  own ward and id) and reads only its own ``stored`` watermark; collectors read the agents'
  topics and write the watermarks and alerts; nothing else is granted;
- ``credentials/{id}.yaml`` and ``credentials/{id}.password`` (0600): the ``mqtt:`` section
  to paste into that agent's or collector's config, and its password;
- ``wardwatch-mosquitto.service``: a sandboxed systemd unit running ``/usr/sbin/mosquitto -c
  DIR/mosquitto.conf`` (``Type=notify``, ``Restart=always``), to copy to /etc/systemd/system
  in place of Debian's own mosquitto.service (docs/deploy.md).

Run again, it keeps the CA and every existing password (new ids get new ones, removed ids
lose theirs); ``--rotate`` makes a new CA and new passwords for everybody. Keys, passwords
and credentials are written 0600. No password is ever printed.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from pydantic import Field, ValidationError, field_validator, model_validator

from wardwatch import wire
from wardwatch.config import ConfigError, Strict, _first_error, parse_yaml

DEFAULT_LISTEN = "0.0.0.0:8883"
CA_DAYS = 3650
LEAF_DAYS = 825
PASSWORD_BYTES = 24  # secrets.token_urlsafe: 32 characters, 192 bits
_ID = wire.NAME_RE.pattern


class AgentEntry(Strict):
    id: str = Field(pattern=_ID, description="the agent's id (agent.id), also its MQTT user name")
    ward: str = Field(pattern=_ID, description="its ward (agent.ward); it may publish only under this ward")
    client_cert: bool = Field(False, description="also make a client certificate signed by the CA")

    @field_validator("ward")
    @classmethod
    def _not_alerts(cls, value: str) -> str:
        if value == "alerts":
            raise ValueError("'alerts' is not a ward id: wardwatch/v1/alerts/ holds the collectors' alerts")
        return value


class CollectorEntry(Strict):
    id: str = Field(pattern=_ID, description="the collector's MQTT user name")
    client_cert: bool = Field(False, description="also make a client certificate signed by the CA")


class Inventory(Strict):
    agents: list[AgentEntry] = Field(default_factory=list, max_length=100_000, description="every agent")
    collectors: list[CollectorEntry] = Field(default_factory=list, max_length=1000, description="every collector")

    @model_validator(mode="after")
    def _unique_ids(self) -> Inventory:
        seen: set[str] = set()
        ids = [("agents", i, a.id) for i, a in enumerate(self.agents)]
        ids += [("collectors", i, c.id) for i, c in enumerate(self.collectors)]
        for key, i, uid in ids:
            if uid in seen:
                raise ValueError(f"{key}[{i}].id: {uid!r} appears twice (ids are MQTT user names)")
            seen.add(uid)
        if not seen:
            raise ValueError("no agents and no collectors: nobody could connect")
        return self


def load_inventory(path: Path) -> Inventory:
    """The inventory file, or ConfigError with one line naming the key."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    raw = parse_yaml(text, str(path))
    try:
        return Inventory.model_validate(raw)
    except ValidationError as exc:  # the cross-entry rules name their own key
        raise ConfigError(_first_error(exc).removeprefix("(top level): ")) from None


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8883`` for IPv6); ValueError naming --listen."""
    host, sep, port = text.rpartition(":")
    host = host.removeprefix("[").removesuffix("]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"--listen {text!r}: expected HOST:PORT, e.g. 0.0.0.0:8883")
    return host, int(port)


@dataclass
class Result:
    """What a run wrote: for the command's summary (never a password)."""

    out: Path
    users: list[str]
    new_ca: bool
    new_passwords: list[str] = field(default_factory=list)


def generate(inventory: Inventory, out: Path, *, listen: str = DEFAULT_LISTEN, name: str | None = None,
             rotate: bool = False, user: str | None = "mosquitto") -> Result:  # fmt: skip
    """Write (or refresh) the broker's files in ``out``; see the module docstring.

    ``name`` is the host name clients connect to (credentials' ``host``, the certificate's
    SAN); by default the listen host, or this machine's name when listening on all
    addresses. ``user`` is Mosquitto's ``user`` setting: the account it drops to when
    started as root, who must read the broker's files (they are given to it when we run as
    root); None leaves the setting out.
    """
    host, port = parse_listen(listen)
    if name is None:
        name = socket.gethostname() if host in ("0.0.0.0", "::") else host
    out = out.resolve()
    tls, creds = out / "tls", out / "credentials"
    for d in (out, tls, creds):
        d.mkdir(parents=True, exist_ok=True)
    os.chmod(creds, 0o700)
    ca_key, ca_cert, new_ca = _ca(tls, rotate=rotate)
    _write_key_and_cert(tls, "server", ca_key, ca_cert, cn=name, sans=[name, host, "localhost", "127.0.0.1"],
                        usage=ExtendedKeyUsageOID.SERVER_AUTH)  # fmt: skip

    users = [a.id for a in inventory.agents] + [c.id for c in inventory.collectors]
    passwords: dict[str, str] = {}
    new: list[str] = []
    for uid in users:
        old = None if rotate else _read_password(creds / f"{uid}.password")
        if old is None:
            new.append(uid)
        passwords[uid] = old or secrets.token_urlsafe(PASSWORD_BYTES)
    _write_passwd(out / "passwd", passwords)
    _write_private(out / "acl", render_acl(inventory).encode())

    wanted: set[str] = set()
    entries: list[AgentEntry | CollectorEntry] = [*inventory.agents, *inventory.collectors]
    for entry in entries:
        uid = entry.id
        pw_file = creds / f"{uid}.password"
        _write_private(pw_file, (passwords[uid] + "\n").encode())
        tls_section: dict[str, str] = {"ca_file": str(tls / "ca.pem")}
        if entry.client_cert:
            _write_key_and_cert(tls, uid, ca_key, ca_cert, cn=uid, sans=[], usage=ExtendedKeyUsageOID.CLIENT_AUTH)
            tls_section.update(cert_file=str(tls / f"{uid}.pem"), key_file=str(tls / f"{uid}.key"))
            wanted |= {f"{uid}.pem", f"{uid}.key"}
        section: dict[str, Any] = {"host": name, "port": port, "username": uid, "password_file": str(pw_file),
                                   "tls": tls_section}  # fmt: skip
        kind = "agent" if isinstance(entry, AgentEntry) else "collector"
        head = (f"# wardwatch-collector broker-config: the mqtt: section of {kind} {uid}.\n"
                f"# Copy it, {uid}.password and tls/ca.pem to that machine; fix the paths; keep it 0600.\n")
        _write_private(creds / f"{uid}.yaml",
                       (head + yaml.safe_dump({"mqtt": section}, sort_keys=False)).encode())  # fmt: skip
        wanted |= {f"{uid}.yaml", f"{uid}.password"}
    for stale in creds.iterdir():  # ids no longer in the inventory: their login is gone from passwd too
        if stale.name not in wanted and stale.suffix in (".yaml", ".password"):
            stale.unlink()
    for stale in tls.iterdir():
        if stale.name not in wanted and stale.name not in _BROKER_TLS and stale.suffix in (".pem", ".key"):
            stale.unlink()

    data = out / "data"
    data.mkdir(exist_ok=True)
    (out / "mosquitto.conf").write_text(render_conf(out, host, port, user))
    (out / UNIT_NAME).write_text(render_unit(out, user))
    if user is not None and os.geteuid() == 0:
        _give_to(user, [out / "passwd", out / "acl", tls / "server.key", data])
    return Result(out=out, users=users, new_ca=new_ca, new_passwords=new)


_BROKER_TLS = frozenset({"ca.pem", "ca.key", "server.pem", "server.key"})

AGENT_WRITES = ("readings", "status", "events", "inventory")
AGENT_TOPICS = (*AGENT_WRITES, "stored")


def render_acl(inventory: Inventory) -> str:
    """Mosquitto's acl_file: no anonymous or pattern lines, so a user not listed gets nothing."""
    lines = [
        "# written by wardwatch-collector broker-config; do not edit, run it again (docs/security.md).",
        "# No topic lines before the first user and no pattern lines: whoever is not listed gets nothing.",
        "",
    ]
    for a in inventory.agents:
        # Its own four topics by name, not {base}/#: that would let an agent write its own
        # retained `stored` watermark, which only the collectors may set.
        base = f"wardwatch/v1/{a.ward}/{a.id}"
        lines += [f"user {a.id}", *(f"topic write {base}/{t}" for t in AGENT_WRITES), f"topic read {base}/stored", ""]
    for c in inventory.collectors:
        lines.append(f"user {c.id}")
        for t in AGENT_TOPICS:
            lines.append(f"topic read wardwatch/v1/+/+/{t}")
        # No $share/ lines: Mosquitto 2.0 checks a subscription to $share/GROUP/FILTER against
        # FILTER, and every message delivered against its own topic, so the lines above cover
        # the collectors' share group (tests/test_broker_config.py subscribes both ways).
        lines += ["topic write wardwatch/v1/+/+/stored", "topic write wardwatch/v1/alerts/#", ""]
    return "\n".join(lines)


def render_conf(out: Path, host: str, port: int, user: str | None) -> str:
    tls = out / "tls"
    lines = [
        "# written by wardwatch-collector broker-config (docs/security.md); run it again rather than edit.",
        "per_listener_settings false",
        *([f"user {user}"] if user else []),
        "",
        "# One listener, TLS only: the broker's certificate is signed by the CA in tls/ca.pem, which",
        "# every agent and collector verifies. Client certificates are optional (require_certificate",
        "# false); one that is presented must be signed by the same CA.",
        f"listener {port} {host}",
        f"cafile {tls / 'ca.pem'}",
        f"certfile {tls / 'server.pem'}",
        f"keyfile {tls / 'server.key'}",
        "tls_version tlsv1.2",
        "require_certificate false",
        "",
        "allow_anonymous false",
        f"password_file {out / 'passwd'}",
        f"acl_file {out / 'acl'}",
        "",
        "# Deliberate, never the default (configs/mosquitto.conf, docs/reliability.md).",
        "max_queued_messages 0",
        "max_queued_bytes 0",
        "max_inflight_messages 100",
        "message_size_limit 1048576",
        "persistent_client_expiration 1d",
        "",
        "persistence true",
        f"persistence_location {out / 'data'}/",
        "autosave_interval 10",
        "",
        "log_dest stderr",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    return "\n".join(lines) + "\n"


UNIT_NAME = "wardwatch-mosquitto.service"
MOSQUITTO = "/usr/sbin/mosquitto"  # Debian's mosquitto package


def render_unit(out: Path, user: str | None) -> str:
    """A systemd unit for this broker: Debian's mosquitto 2.x speaks sd_notify (Type=notify),
    it runs as ``user`` from the start (port 8883 needs no privilege, and the files it reads
    were given to that user), and it may write only its persistence folder ``out/data``."""
    run_as = [f"User={user}", f"Group={user}"] if user and user != "root" else [
        "# No User=: broker-config ran with --user root or none, so Mosquitto runs as root (a lab)."]
    lines = [
        "# written by wardwatch-collector broker-config (docs/deploy.md); run it again rather than edit.",
        f"#   cp {out / UNIT_NAME} /etc/systemd/system/ && systemctl daemon-reload",
        "#   systemctl disable --now mosquitto      # Debian's own unit: one broker, this one",
        "#   systemctl enable --now wardwatch-mosquitto",
        "[Unit]",
        "Description=Mosquitto MQTT broker for wardwatch (TLS, logins and ACL from broker-config)",
        "After=network-online.target",
        "Wants=network-online.target",
        "Conflicts=mosquitto.service",
        "StartLimitIntervalSec=0",
        "",
        "[Service]",
        "Type=notify",
        "NotifyAccess=main",
        f"ExecStart={MOSQUITTO} -c {out / 'mosquitto.conf'}",
        "# SIGHUP re-reads passwd and acl (after broker-config ran again); a new certificate needs a restart.",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=always",
        "RestartSec=2s",
        "TimeoutStopSec=30s",
        *run_as,
        "UMask=0077",
        "# Persistence (in-flight QoS 1 messages and persistent sessions, autosaved every 10 s) is",
        "# the only thing it writes; everything else is read-only to it.",
        f"ReadWritePaths={out / 'data'}",
        "LimitNOFILE=65536",
        "CapabilityBoundingSet=",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "ProtectKernelTunables=yes",
        "ProtectKernelModules=yes",
        "ProtectKernelLogs=yes",
        "ProtectControlGroups=yes",
        "ProtectClock=yes",
        "ProtectHostname=yes",
        "ProtectProc=invisible",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "RestrictNamespaces=yes",
        "RestrictRealtime=yes",
        "RestrictSUIDSGID=yes",
        "LockPersonality=yes",
        "MemoryDenyWriteExecute=yes",
        "RemoveIPC=yes",
        "SystemCallArchitectures=native",
        "SystemCallFilter=@system-service",
        "SystemCallFilter=~@privileged @resources",
        "SystemCallErrorNumber=EPERM",
        "",
        "[Install]",
        "WantedBy=multi-user.target",
    ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ certificates


def _ca(tls: Path, *, rotate: bool) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate, bool]:
    key_path, cert_path = tls / "ca.key", tls / "ca.pem"
    if not rotate and key_path.exists() and cert_path.exists():
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError(f"{key_path}: not the EC key broker-config writes; run with --rotate")
        return key, x509.load_pem_x509_certificate(cert_path.read_bytes()), False
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wardwatch broker CA"),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wardwatch")])  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                     crl_sign=True, encipher_only=False, decipher_only=False),
                       critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(key_path, _pem_key(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, True


def _write_key_and_cert(tls: Path, stem: str, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, *,
                        cn: str, sans: list[str], usage: x509.ObjectIdentifier) -> None:  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(min(now + dt.timedelta(days=LEAF_DAYS), ca_cert.not_valid_after_utc))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    names: list[x509.GeneralName] = []
    for san in dict.fromkeys(sans):  # in order, once each
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(san)))
        except ValueError:
            names.append(x509.DNSName(san))
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    _write_private(tls / f"{stem}.key", _pem_key(key))
    _write_public(tls / f"{stem}.pem", cert.public_bytes(serialization.Encoding.PEM))


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())  # fmt: skip


# ------------------------------------------------------------------------ files


def _write_private(path: Path, body: bytes) -> None:
    """Write ``body`` as a new 0600 file, then rename it over ``path``: never readable by others,
    not even for a moment, and never half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(body)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def _write_public(path: Path, body: bytes) -> None:
    _write_private(path, body)
    os.chmod(path, 0o644)


def _read_password(path: Path) -> str | None:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    return value or None


def _write_passwd(path: Path, passwords: dict[str, str]) -> None:
    """A password file hashed by ``mosquitto_passwd -U``: the plain file (0600) is hashed in
    place, so no password is ever an argument that ``ps`` could show."""
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not Path(tool).exists():
        raise ConfigError("mosquitto_passwd not found: install Debian's mosquitto package")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".passwd.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.writelines(f"{uid}:{pw}\n" for uid, pw in passwords.items())
        done = subprocess.run([tool, "-U", tmp], capture_output=True, timeout=120, check=False)
        if done.returncode != 0:
            raise ConfigError(f"mosquitto_passwd -U failed with status {done.returncode}")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    os.chmod(path, 0o600)


def _give_to(user: str, paths: list[Path]) -> None:
    """chown what the broker reads (and its persistence folder) to ``user``, who Mosquitto
    becomes after it starts as root; a user that does not exist is left alone."""
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return
    for p in paths:
        os.chown(p, entry.pw_uid, entry.pw_gid)
