"""A UDP SNMP responder (v1/v2c) that answers with chosen kinds of garbage.

It stands in for a device with broken firmware, or something else entirely on port 161,
so it knows nothing of wardwatch. It serves a small switch (system scalars and IF-MIB for
``ports`` interfaces with counters that move with time) and spoils its answers as the
``mode`` says:

- ``healthy``: correct answers (a control);
- ``truncated``: a correct answer cut short;
- ``wrong_length``: a correct answer whose outer BER length claims more than is there;
- ``random``: random bytes, half of them starting like a BER SEQUENCE;
- ``wrong_request_id``: a correct answer to another request;
- ``wrong_types``: sysUpTime is right, every other value has a wrong type (an OCTET
  STRING of junk, an OID, an IpAddress, a Null);
- ``bad_tag``: every value but sysUpTime carries an ASN.1 tag no SNMP type has;
- ``repeat``: walks get the OID they asked about back, forever (non-increasing);
- ``endless``: the ifHCInOctets column never ends (an infinite increasing table);
- ``bad_error``: an error-status no SNMP version defines, at an error-index past the end;
- ``empty``: answers without any varbinds.

Run it with ``python -m wardwatch.simulators.garbage_snmp --port N --mode M``; it prints
``ready`` when listening. Requests are counted in :attr:`GarbageResponder.requests`.
"""

from __future__ import annotations

import argparse
import bisect
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from pyasn1.codec.ber import decoder, encoder  # type: ignore[import-untyped]
from pyasn1.error import PyAsn1Error  # type: ignore[import-untyped]
from pyasn1.type import univ  # type: ignore[import-untyped]
from pysnmp.proto import api, rfc1902, rfc1905

MODES = ("healthy", "truncated", "wrong_length", "random", "wrong_request_id", "wrong_types", "bad_tag", "repeat",
         "endless", "bad_error", "empty")
SYS = "1.3.6.1.2.1.1"
IF = "1.3.6.1.2.1.2.2.1"
IFX = "1.3.6.1.2.1.31.1.1.1"
HC_IN = f"{IFX}.6"
BAD_TAG_MARK = b"WWBADTAG"  # an OCTET STRING whose tag byte is patched to one no SNMP type has
BAD_TAG = 0x5F  # [APPLICATION 31], a multi-byte-tag marker: no SNMP type; patched in place of 0x04

Oid = tuple[int, ...]


def _oid(text: str) -> Oid:
    return tuple(int(p) for p in text.split("."))


class Mib:
    """The switch: OID -> a function of the seconds since start."""

    def __init__(self, ports: int, started: float) -> None:
        self.started = started
        rows: dict[Oid, Callable[[float], Any]] = {
            _oid(f"{SYS}.1.0"): lambda t: rfc1902.OctetString(b"garbage-snmp responder"),
            _oid(f"{SYS}.2.0"): lambda t: rfc1902.ObjectIdentifier("1.3.6.1.4.1.32473.9.1"),
            _oid(f"{SYS}.3.0"): lambda t: rfc1902.TimeTicks(int(t * 100) % 2**32),
            _oid(f"{SYS}.5.0"): lambda t: rfc1902.OctetString(b"sw-garbage"),
        }
        for i in range(1, ports + 1):
            rows.update(_port_rows(i, rate=100_000 * i))  # bytes per second
        # Rows after ifXTable, so that walks end on another subtree, not endOfMibView.
        rows[_oid("1.3.6.1.2.1.47.1.1.1.1.2.1")] = lambda t: rfc1902.OctetString(b"chassis")
        self.rows = rows
        self.order = sorted(rows)

    def now(self) -> float:
        return time.monotonic() - self.started

    def get(self, oid: Oid) -> Any:
        fn = self.rows.get(oid)
        return rfc1905.NoSuchObject("") if fn is None else fn(self.now())

    def next(self, oid: Oid, *, endless: bool) -> tuple[Oid, Any]:
        hc = _oid(HC_IN)
        at = bisect.bisect_right(self.order, oid)  # the first key after oid (a linear scan was slow)
        if at < len(self.order):
            key = self.order[at]
            if not (endless and oid[: len(hc)] == hc and key[: len(hc)] != hc):  # else: past the real rows
                return key, self.rows[key](self.now())
        if endless and oid[: len(hc)] == hc:
            return (*hc, (oid[len(hc)] if len(oid) > len(hc) else 0) + 1), rfc1902.Counter64(12345)
        return oid, rfc1905.EndOfMibView("")


def _port_rows(i: int, *, rate: int) -> dict[Oid, Callable[[float], Any]]:
    def octets(share: float, kind: Callable[[int], Any], modulo: int) -> Callable[[float], Any]:
        return lambda t: kind(int(rate * share * t) % modulo)

    return {
        _oid(f"{IF}.3.{i}"): lambda t: rfc1902.Integer(6),
        _oid(f"{IF}.8.{i}"): lambda t: rfc1902.Integer(1),
        _oid(f"{IF}.10.{i}"): octets(1.0, rfc1902.Counter32, 2**32),
        _oid(f"{IF}.16.{i}"): octets(0.5, rfc1902.Counter32, 2**32),
        _oid(f"{IFX}.1.{i}"): lambda t: rfc1902.OctetString(f"port{i}".encode()),
        _oid(f"{IFX}.6.{i}"): octets(1.0, rfc1902.Counter64, 2**64),
        _oid(f"{IFX}.10.{i}"): octets(0.5, rfc1902.Counter64, 2**64),
        _oid(f"{IFX}.15.{i}"): lambda t: rfc1902.Gauge32(1000),
    }


_JUNK: list[Callable[[], Any]] = [
    lambda: rfc1902.OctetString(b"\xffjunk\nvalue\x00"),
    lambda: rfc1902.ObjectIdentifier("1.3.6.1.4.1.32473.666"),
    lambda: rfc1902.IpAddress("10.6.6.6"),
    lambda: univ.Null(""),
    lambda: rfc1902.OctetString(b"nan"),
]


class GarbageResponder:
    """A UDP responder on ``host:port`` in a thread of its own; see the module doc."""

    def __init__(self, *, port: int, mode: str, host: str = "127.0.0.1", ports: int = 4, seed: int = 0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        self.mode = mode
        self.mib = Mib(ports, time.monotonic())
        self.rng = random.Random(seed)
        self.requests = 0
        self.undecodable = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, port))
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"garbage-snmp-{mode}", daemon=True)

    def __enter__(self) -> GarbageResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(timeout=5)

    def serve_forever(self) -> None:
        self._serve()

    def _serve(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:  # closed
                return
            self.requests += 1
            try:
                answer = self.answer(data)
            except (PyAsn1Error, KeyError):  # not SNMP, or SNMPv3: nothing to answer
                self.undecodable += 1
                continue
            if answer:
                try:
                    self.sock.sendto(answer, peer)
                except OSError:
                    return

    def answer(self, data: bytes) -> bytes:
        version = int(api.decodeMessageVersion(data))
        p_mod = api.PROTOCOL_MODULES[version]
        msg, _ = decoder.decode(data, asn1Spec=p_mod.Message())
        pdu = p_mod.apiMessage.get_pdu(msg)
        response = p_mod.apiPDU.get_response(pdu)
        request_id = int(p_mod.apiPDU.get_request_id(pdu))
        asked = [(tuple(oid), val) for oid, val in p_mod.apiPDU.get_varbinds(pdu)]
        binds = [] if self.mode == "empty" else self._varbinds(pdu, asked, p_mod)
        if self.mode in ("wrong_types", "bad_tag"):
            binds = [(oid, val if oid == _oid(f"{SYS}.3.0") else self._spoil(n)) for n, (oid, val) in enumerate(binds)]
        p_mod.apiPDU.set_varbinds(response, binds)
        if self.mode == "bad_error":
            response.setComponentByPosition(1, 99, verifyConstraints=False)
            response.setComponentByPosition(2, len(binds) + 7)
        p_mod.apiPDU.set_request_id(response, request_id + 1 if self.mode == "wrong_request_id" else request_id)
        out = p_mod.apiMessage.get_response(msg)
        p_mod.apiMessage.set_pdu(out, response)
        wire: bytes = encoder.encode(out)
        if self.mode == "truncated":
            return wire[: max(1, len(wire) // 2)]
        if self.mode == "wrong_length":
            body = wire[2:] if wire[1] < 0x80 else wire[2 + (wire[1] & 0x7F):]
            return b"\x30\x82" + (len(body) + 100).to_bytes(2, "big") + body
        if self.mode == "random":
            junk = os.urandom(self.rng.randrange(1, 200))
            return (b"\x30" + bytes([len(junk)]) + junk[:127]) if self.rng.random() < 0.5 else junk
        if self.mode == "bad_tag":
            return wire.replace(b"\x04" + bytes([len(BAD_TAG_MARK)]) + BAD_TAG_MARK,
                                bytes([BAD_TAG, len(BAD_TAG_MARK)]) + BAD_TAG_MARK)
        return wire

    def _spoil(self, n: int) -> Any:
        if self.mode == "bad_tag":
            return rfc1902.OctetString(BAD_TAG_MARK)
        return _JUNK[n % len(_JUNK)]()

    def _varbinds(self, pdu: Any, asked: list[tuple[Oid, Any]], p_mod: Any) -> list[tuple[Oid, Any]]:
        endless = self.mode == "endless"
        tag = pdu.tagSet
        if tag == p_mod.GetRequestPDU.tagSet:
            return [(oid, self.mib.get(oid)) for oid, _ in asked]
        if tag == p_mod.GetNextRequestPDU.tagSet:
            return [self._next(oid, endless) for oid, _ in asked]
        if hasattr(p_mod, "GetBulkRequestPDU") and tag == p_mod.GetBulkRequestPDU.tagSet:
            non_rep = int(p_mod.apiBulkPDU.get_non_repeaters(pdu))
            reps = min(int(p_mod.apiBulkPDU.get_max_repetitions(pdu)), 64)
            out = [self._next(oid, endless) for oid, _ in asked[:non_rep]]
            cursors = [oid for oid, _ in asked[non_rep:]]
            for _ in range(reps):
                if not cursors or len(out) >= 64:
                    break
                row = [self._next(oid, endless) for oid in cursors]
                out.extend(row)
                cursors = [oid for oid, _ in row]
            return out
        return [(oid, val) for oid, val in asked]

    def _next(self, oid: Oid, endless: bool) -> tuple[Oid, Any]:
        if self.mode == "repeat" and _in_table(oid):
            return oid, rfc1902.Counter64(1)
        return self.mib.next(oid, endless=endless)


def _in_table(oid: Oid) -> bool:
    """An OID of a row of ifTable or ifXTable (the entry, a column, and an index)."""
    return any(oid[: len(entry)] == entry and len(oid) >= len(entry) + 2 for entry in (_oid(IF), _oid(IFX)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mode", choices=MODES, required=True)
    parser.add_argument("--ports", type=int, default=4, help="interfaces of the simulated switch")
    args = parser.parse_args(argv)
    responder = GarbageResponder(host=args.host, port=args.port, mode=args.mode, ports=args.ports)
    print("ready", flush=True)
    try:
        responder.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
