"""An RTSP stub (RFC 2326): OPTIONS, and DESCRIBE behind Digest auth answering with SDP.

No media flows; SETUP and PLAY answer 501. ``rtsp`` fault knob: ``404`` (no such stream),
``401`` (credentials never accepted), ``timeout`` (reads requests, never answers);
``rtsp_long_line``: every reply carries one header line of that many bytes, streamed.
With an ``ssl.SSLContext`` it speaks RTSP over TLS (``rtsps``, RFC 7826 section 19.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import ssl
from urllib.parse import urlsplit

from wardwatch.simulators.camera.brands import rtsp_path
from wardwatch.simulators.camera.digest import DigestAuth
from wardwatch.simulators.camera.state import Camera

log = logging.getLogger(__name__)
MAX_HEADER_BYTES = 16384
READ_TIMEOUT_S = 60.0
PUBLIC = "OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN, GET_PARAMETER"


def sdp(cam: Camera, index: int) -> str:
    s = cam.brand.streams[index]
    codec = "H265" if s.encoding == "H265" else "H264"
    fmtp = "a=fmtp:96 packetization-mode=1;profile-level-id=4D0029\r\n" if codec == "H264" else ""
    return (f"v=0\r\no=- {cam.reboots} 1 IN IP4 {cam.host}\r\ns=Media Presentation\r\n"
            f"e=NONE\r\nb=AS:{s.bitrate_kbps + 64}\r\nt=0 0\r\na=control:*\r\na=range:npt=now-\r\n"
            f"m=video 0 RTP/AVP 96\r\nc=IN IP4 0.0.0.0\r\nb=AS:{s.bitrate_kbps}\r\n"
            f"a=rtpmap:96 {codec}/90000\r\n{fmtp}a=framerate:{s.fps}\r\na=x-dimensions:{s.width},{s.height}\r\n"
            f"a=framesize:96 {s.width}-{s.height}\r\na=control:trackID=1\r\na=recvonly\r\n")


class RtspServer:
    """One camera's RTSP listener."""

    def __init__(self, cam: Camera, auth: DigestAuth, *, tls: ssl.SSLContext | None = None) -> None:
        self.cam = cam
        self.auth = auth
        self.tls = tls
        self.tls_handshakes = 0  # connections that completed a TLS handshake
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._client, self.cam.host, self.cam.rtsp_port,
                                                      reuse_address=True, backlog=64, ssl=self.tls,
                                                      ssl_handshake_timeout=5 if self.tls else None)
            if self.cam.rtsp_port == 0:
                self.cam.rtsp_port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening and drop every open connection."""
        if self._server is not None:
            self._server.close()
            self._server = None
        for w in list(self._writers):
            w.close()
        self._writers.clear()

    def _response(self, code: int, reason: str, cseq: str, headers: dict[str, str], body: str = "") -> bytes:
        lines = [f"RTSP/1.0 {code} {reason}", f"CSeq: {cseq}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        if self.cam.brand.server_header:
            lines.append(f"Server: {self.cam.brand.server_header}")
        lines += [f"{k}: {v}" for k, v in headers.items()]
        data = body.encode()
        if data:
            lines.append(f"Content-Length: {len(data)}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode() + data

    def _stream_index(self, url: str) -> int | None:
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        for i in range(len(self.cam.brand.streams)):
            expected = rtsp_path(self.cam.brand, i)
            if target == expected or target.rstrip("/") == expected or target.startswith(expected + "&"):
                return i
        return None

    async def _answer(self, method: str, url: str, cseq: str, headers: dict[str, str]) -> bytes:
        cam = self.cam
        if method == "OPTIONS":
            return self._response(200, "OK", cseq, {"Public": PUBLIC})
        if method != "DESCRIBE":
            return self._response(501, "Not Implemented", cseq, {})
        if cam.faults.rtsp == "404":
            return self._response(404, "Not Found", cseq, {})
        header = headers.get("authorization")
        if header and header.lower().startswith("basic"):
            cam.basic_received += 1
        if cam.faults.basic_only:
            verdict = self.auth.verify_basic(header)
            challenge = self.auth.basic_challenge()
        else:
            verdict = self.auth.verify(method, header)
            challenge = self.auth.challenge(stale=verdict == "stale")
        if cam.faults.rtsp == "401" or cam.faults.auth_fail or verdict != "ok":
            return self._response(401, "Unauthorized", cseq, {"WWW-Authenticate": challenge})
        index = self._stream_index(url)
        if index is None:
            return self._response(404, "Not Found", cseq, {})
        base = url if url.endswith("/") else url + "/"
        return self._response(200, "OK", cseq, {"Content-Base": base, "Content-Type": "application/sdp"},
                              sdp(cam, index))

    async def _write(self, writer: asyncio.StreamWriter, reply: bytes) -> None:
        """Send ``reply``; with ``rtsp_long_line``, one huge header line goes right after the status
        line, written in 64 KiB pieces (the stub never holds it whole)."""
        size = self.cam.faults.rtsp_long_line
        if not size:
            writer.write(reply)
            await writer.drain()
            return
        status, _, rest = reply.partition(b"\r\n")
        writer.write(status + b"\r\nX-Padding: ")
        piece = b"a" * 65536
        left = size
        while left > 0:
            writer.write(piece[:min(left, len(piece))])
            left -= len(piece)
            await writer.drain()
        writer.write(b"\r\n" + rest)
        await writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if writer.get_extra_info("ssl_object") is not None:
            self.tls_handshakes += 1
        try:
            while self.cam.available():
                try:
                    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), READ_TIMEOUT_S)
                except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ConnectionError):
                    return
                if len(head) > MAX_HEADER_BYTES:
                    return
                lines = head.decode("utf-8", "replace").split("\r\n")
                parts = lines[0].split(" ")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, _, v = line.partition(":")
                        headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0") or "0")
                if length:
                    await reader.readexactly(min(length, MAX_HEADER_BYTES))
                if self.cam.faults.slow:
                    await asyncio.sleep(self.cam.faults.slow)
                if not self.cam.available():
                    return
                if self.cam.faults.rtsp == "timeout":
                    continue
                cseq = headers.get("cseq", "0")
                if len(parts) != 3 or not parts[2].startswith("RTSP/"):
                    await self._write(writer, self._response(400, "Bad Request", cseq, {}))
                    return
                await self._write(writer, await self._answer(parts[0], parts[1], cseq, headers))
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                await writer.wait_closed()
