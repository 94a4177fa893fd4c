"""What broken or hostile camera firmware sends: the bodies behind the garbage knobs.

``soap_garbage`` cycles through :data:`SOAP_GARBAGE` one request at a time, so that a client
polling a few times meets every kind; ``billion_laughs`` wraps any answer in an entity-
expansion bomb; ``event_garbage`` fills PullMessages answers with messages of odd shapes;
``snapshot_huge`` streams a JPEG of any size without ever holding it.
Everything is deterministic (seeded by a counter), so a failing test can be replayed.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from xml.sax.saxutils import escape, quoteattr

from wardwatch.simulators.camera import soap

CHUNK = 64 * 1024


def _random_bytes(n: int, _payload: bytes) -> bytes:
    return random.Random(n).randbytes(4096)


def _truncated(n: int, payload: bytes) -> bytes:
    cut = random.Random(n).randrange(1, max(len(payload) - 1, 2))
    return payload[:cut]


def _wrong_shape(_n: int, _payload: bytes) -> bytes:
    return soap.envelope("<tds:SomethingElseEntirely><tt:Bogus>1</tt:Bogus><x>&lt;</x></tds:SomethingElseEntirely>")


def _html(_n: int, _payload: bytes) -> bytes:
    return b"<html><head><title>500</title></head><body><h1>Internal Server Error</h1><br></body></html>"


def _empty(_n: int, _payload: bytes) -> bytes:
    return b""


def _deep(_n: int, _payload: bytes) -> bytes:
    depth = 50_000  # far beyond libxml2's default depth limit (256 without huge_tree)
    return soap.envelope("<a>" * depth + "</a>" * depth)


def _not_an_envelope(_n: int, _payload: bytes) -> bytes:
    return b'<?xml version="1.0"?><Envelope><Body><Fault>no namespace</Fault></Body></Envelope>'


def _bad_utf8(n: int, payload: bytes) -> bytes:
    mid = len(payload) // 2
    return payload[:mid] + b"\xc3\x28\xa0\xa1\xff" + payload[mid:]


# Each entry: (name, payload -> garbage). The request counter picks one.
SOAP_GARBAGE: tuple[tuple[str, Callable[[int, bytes], bytes]], ...] = (
    ("random_bytes", _random_bytes),
    ("truncated", _truncated),
    ("wrong_shape", _wrong_shape),
    ("html", _html),
    ("empty", _empty),
    ("deep", _deep),
    ("no_namespace", _not_an_envelope),
    ("bad_utf8", _bad_utf8),
)


def soap_garbage(n: int, payload: bytes) -> bytes:
    """The ``n``-th garbage answer in place of ``payload``."""
    _, make = SOAP_GARBAGE[n % len(SOAP_GARBAGE)]
    return make(n, payload)


_LAUGHS = ('<!ENTITY lol "lol">\n'
           + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
                     for i in range(1, 10)))


def billion_laughs(body: str, header: str = "") -> bytes:
    """``body``'s envelope behind a DTD whose entity ``lol9`` expands to 10^9 "lol"s (3 GB),
    referenced inside the answer. A parser that expands entities runs out of memory."""
    doc = soap.envelope("<tt:Note>&lol9;</tt:Note>" + body, header).decode()
    decl, _, rest = doc.partition("?>")
    return f"{decl}?>\n<!DOCTYPE env:Envelope [\n{_LAUGHS}]>\n{rest.lstrip()}".encode()


def laughs_document(doc: bytes, *, root: str, utf16: bool = False) -> bytes:
    """Any XML document ``doc`` (UTF-8, with an XML declaration) behind the billion-laughs DTD,
    ``&lol9;`` referenced before its last closing tag; in UTF-16 (with a BOM) when ``utf16``,
    where no ``<!DOCTYPE`` byte string shows for a filter to spot."""
    text = doc.decode()
    decl, _, rest = text.partition("?>")
    head, sep, tail = rest.rpartition("</")
    body = f"{head}&lol9;{sep}{tail}" if sep else rest
    if utf16:
        decl = decl.replace('encoding="UTF-8"', 'encoding="UTF-16"')
    out = f"{decl}?>\n<!DOCTYPE {root} [\n{_LAUGHS}]>\n{body.lstrip()}"
    return out.encode("utf-16") if utf16 else out.encode()


def _item(name: str | None, value: str | None) -> str:
    attrs = "" if name is None else f" Name={quoteattr(name)}"
    attrs += "" if value is None else f" Value={quoteattr(value)}"
    return f"<tt:SimpleItem{attrs}/>"


def _message(topic_xml: str, message_xml: str) -> str:
    return f"<wsnt:NotificationMessage>{topic_xml}<wsnt:Message>{message_xml}</wsnt:Message></wsnt:NotificationMessage>"


def odd_messages(n: int) -> str:
    """NotificationMessages of every odd shape seen in the field (and some not yet)."""
    dialect = 'Dialect="http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"'
    long_text = "tns1:VideoSource/" + "A\n\t" * 4000
    nasty = "line1\nline2\r\n\x85\u2028\u202eevil\u0007?"
    ok_msg = ('<tt:Message UtcTime="2024-01-01T00:00:00Z" PropertyOperation="Changed"><tt:Source>'
              + _item("Source", "VideoSource0") + "</tt:Source><tt:Data>" + _item("State", "true")
              + "</tt:Data></tt:Message>")
    msgs = [
        # no Topic at all
        "<wsnt:NotificationMessage><wsnt:Message>" + ok_msg + "</wsnt:Message></wsnt:NotificationMessage>",
        # a 12 kB topic full of newlines and tabs
        _message(f"<wsnt:Topic {dialect}>{escape(long_text)}</wsnt:Topic>", ok_msg),
        # a topic made of elements, not text
        _message(f"<wsnt:Topic {dialect}><tt:A><tt:B>x</tt:B></tt:A></wsnt:Topic>", ok_msg),
        # a Message that is only text
        _message(f"<wsnt:Topic {dialect}>tns1:VideoSource/SignalLoss</wsnt:Topic>", "just text, no tt:Message"),
        # no Message at all
        f"<wsnt:NotificationMessage><wsnt:Topic {dialect}>tns1:Device/Trigger/Relay</wsnt:Topic>"
        "</wsnt:NotificationMessage>",
        # items without names or values, element items, a nasty and a 10 kB value, a bad UtcTime
        _message(f"<wsnt:Topic {dialect}>tns1:RuleEngine/TamperDetector/Tamper</wsnt:Topic>",
                 '<tt:Message UtcTime="yesterday, roughly" PropertyOperation="Exploded"><tt:Source>'
                 + _item(None, "x") + _item("Rule", None) + _item(nasty, nasty) + "</tt:Source><tt:Data>"
                 + '<tt:ElementItem Name="Layout"><tt:Cell x="1"/></tt:ElementItem>'
                 + _item("IsTamper", "true") + _item("Blob", "B\n" * 5000) + "</tt:Data></tt:Message>"),
        # a thousand data items
        _message(f"<wsnt:Topic {dialect}>tns1:VideoSource/MotionAlarm</wsnt:Topic>",
                 '<tt:Message UtcTime="2024-01-01T00:00:00Z"><tt:Data>'
                 + "".join(_item(f"k{i}", "true") for i in range(1000)) + "</tt:Data></tt:Message>"),
        # a topic with control characters and bidi overrides
        _message(f"<wsnt:Topic {dialect}>{escape('tns1:Vid' + nasty)}</wsnt:Topic>", ok_msg),
    ]
    # more messages than any MessageLimit asked for
    msgs += [_message(f"<wsnt:Topic {dialect}>tns1:Device/Spam/{i}</wsnt:Topic>", ok_msg) for i in range(300)]
    return "".join(msgs)


def event_garbage(n: int, body: str) -> bytes | None:
    """Every third PullMessages answer is random bytes (None: send ``body``, with odd messages)."""
    if n % 3 == 2:
        return random.Random(n).randbytes(2048)
    return None


# A small valid JPEG start (SOI, APP0 JFIF): the client sees an image that never ends.
JPEG_HEAD = (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
             b"\xff\xfe\x00\x10huge snapshot!")

