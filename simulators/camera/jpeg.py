"""Small valid baseline JPEGs without an imaging library.

The encoder writes greyscale images whose 8x8 blocks are flat (DC coefficients only), which
is enough for a real decoder to show a picture: a gradient with a bright bar that moves from
frame to frame. A few frames are built once; each snapshot is one of them with a COM segment
carrying a counter and the camera clock, so its bytes (and hash) change on every request.
"""

from __future__ import annotations

import struct
from functools import lru_cache

# ITU T.81 Annex K.3: the standard luminance DC table.
_DC_BITS = (0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0)
_DC_VALS = tuple(range(12))
# An AC table with one symbol, EOB (0x00): every block is DC-only.
_AC_BITS = (1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
_AC_VALS = (0x00,)
_Q_DC = 8
FRAMES = 8


def _codes(bits: tuple[int, ...], vals: tuple[int, ...]) -> dict[int, tuple[int, int]]:
    """Canonical Huffman codes: symbol -> (code, length)."""
    out: dict[int, tuple[int, int]] = {}
    code = 0
    k = 0
    for length, count in enumerate(bits, start=1):
        for _ in range(count):
            out[vals[k]] = (code, length)
            code += 1
            k += 1
        code <<= 1
    return out


class _BitWriter:
    def __init__(self) -> None:
        self.out = bytearray()
        self.acc = 0
        self.n = 0

    def write(self, value: int, length: int) -> None:
        for i in range(length - 1, -1, -1):
            self.acc = (self.acc << 1) | ((value >> i) & 1)
            self.n += 1
            if self.n == 8:
                self.out.append(self.acc)
                if self.acc == 0xFF:
                    self.out.append(0x00)
                self.acc = 0
                self.n = 0

    def flush(self) -> bytes:
        while self.n:
            self.write(1, 1)
        return bytes(self.out)


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">HH", marker, len(payload) + 2) + payload


def encode(levels: list[list[int]]) -> bytes:
    """Encode a grid of block levels (0..255, one per 8x8 block) as a greyscale JPEG."""
    rows, cols = len(levels), len(levels[0])
    dc = _codes(_DC_BITS, _DC_VALS)
    ac = _codes(_AC_BITS, _AC_VALS)
    bw = _BitWriter()
    prev = 0
    for row in levels:
        for level in row:
            coef = round(8 * (level - 128) / _Q_DC)
            diff = coef - prev
            prev = coef
            size = abs(diff).bit_length()
            code, length = dc[size]
            bw.write(code, length)
            if size:
                bw.write(diff if diff > 0 else diff + (1 << size) - 1, size)
            code, length = ac[0x00]
            bw.write(code, length)
    quant = bytes([_Q_DC] + [16] * 63)
    parts = [
        b"\xff\xd8",
        _segment(0xFFE0, b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"),
        _segment(0xFFDB, b"\x00" + quant),
        _segment(0xFFC0, struct.pack(">BHHB", 8, rows * 8, cols * 8, 1) + b"\x01\x11\x00"),
        _segment(0xFFC4, b"\x00" + bytes(_DC_BITS) + bytes(_DC_VALS)),
        _segment(0xFFC4, b"\x10" + bytes(_AC_BITS) + bytes(_AC_VALS)),
        _segment(0xFFDA, b"\x01\x01\x00\x00\x3f\x00"),
        bw.flush(),
        b"\xff\xd9",
    ]
    return b"".join(parts)


@lru_cache(maxsize=16)
def frame(index: int, width: int = 160, height: int = 96) -> bytes:
    """Frame ``index`` (mod FRAMES): a diagonal gradient with a bright bar at a moving column."""
    cols, rows = width // 8, height // 8
    bar = (index % FRAMES) * cols // FRAMES
    levels = [[255 if c in (bar, bar + 1) else 40 + (150 * (r + c)) // (rows + cols) for c in range(cols)]
              for r in range(rows)]
    return encode(levels)


def snapshot(index: int, comment: str) -> bytes:
    """A frame with a COM segment right after SOI; ``comment`` makes the bytes unique."""
    body = frame(index)
    return body[:2] + _segment(0xFFFE, comment.encode("ascii", "replace")[:60000]) + body[2:]
