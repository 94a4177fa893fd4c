"""Building a paho-mqtt 2.x client from the shared ``mqtt:`` config section.

Both the agent and the collector use paho directly: its network loop runs in paho's own
thread and callbacks are handed to asyncio with ``call_soon_threadsafe``. The reconnect
policy belongs to the caller.
"""

from __future__ import annotations

import logging
import ssl
import struct
from typing import Any, Final

from paho.mqtt.client import PUBACK, Client, MQTTv5
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from wardwatch.config import MqttSection, TlsSection, is_loopback

log = logging.getLogger(__name__)
_warned_clear: set[str] = set()


READ_CHUNK: Final = 65_536


class FastClient(Client):
    """paho's client, reading the socket in chunks and acking in bulk (the collector's).

    paho 2.x reads each packet with one ``recv`` per header byte and one for the rest: four
    system calls for every PUBLISH. This reads up to :data:`READ_CHUNK` bytes at a time and
    hands paho its packets from that buffer; :meth:`loop_read` goes on until the buffer is
    empty (the socket's readiness says nothing about bytes already read). The buffer
    belongs to one socket: a new connection starts with none.
    :meth:`puback_many` queues the PUBACKs of many messages as one write.
    Both lean on paho 2.x internals (``_sock_recv``, ``_packet_queue``), pinned <3 in
    pyproject; tests/test_delivery*.py exercise them against a real Mosquitto.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._rbuf = b""
        self._rpos = 0
        self._rsock: object | None = None

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._rsock is not self._sock:  # a new connection: nothing of the old one is kept
            self._rbuf, self._rpos, self._rsock = b"", 0, self._sock
        buf, pos = self._rbuf, self._rpos
        if pos >= len(buf):
            self._rbuf, self._rpos = b"", 0
            buf = super()._sock_recv(max(bufsize, READ_CHUNK))  # BlockingIOError etc. pass through
            if not buf:
                return buf  # the peer closed
            pos = 0
        end = pos + bufsize
        self._rbuf, self._rpos = buf, end
        return buf[pos:end]

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while (rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._rpos < len(self._rbuf)
               and self._sock is not None and self._rsock is self._sock):
            rc = super().loop_read(max_packets)
        return rc

    def puback_many(self, mids: list[int]) -> None:
        """PUBACK (success, MQTT 5's short form, as paho's own ack sends) each of ``mids``,
        in order, in one queued write."""
        if mids:
            packet = b"".join([struct.pack("!BBH", PUBACK, 2, mid) for mid in mids])
            self._packet_queue(PUBACK, packet, 0, 1)


def make_client(cfg: MqttSection, *, client_id: str, manual_ack: bool = False, fast: bool = False) -> Client:
    """``fast``: a :class:`FastClient` (chunked reads, bulk acks)."""
    client = (FastClient if fast else Client)(
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
        client.tls_set_context(tls_context(cfg.tls))
    return client


def tls_context(tls: TlsSection) -> ssl.SSLContext:
    """The client side of ``mqtt.tls``: the broker's certificate must chain to ``ca_file``
    (the system's CAs without it) and name ``mqtt.host`` unless ``insecure``; the client
    certificate when one is given. Raises OSError or ssl.SSLError for a file that does not
    load. The agent's ``check`` verifies with this same context (agent/core/preflight.py)."""
    context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
    if tls.cert_file:
        context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
    if tls.insecure:
        context.check_hostname = False
    return context


def describe(cfg: MqttSection) -> str:
    """Where we connect, for log lines; never the password."""
    scheme = "mqtts" if cfg.tls else "mqtt"
    user = f"{cfg.username}@" if cfg.username else ""
    return f"{scheme}://{user}{cfg.host}:{cfg.port}"
