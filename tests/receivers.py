"""Local receivers for the alert channels, shared by the test modules.

Each runs in a background thread with its own event loop, on a free loopback port, so
sync and async tests alike can use it: :class:`WebhookReceiver` (any Alertmanager-style
webhook), :class:`BotApiReceiver` (Telegram- or Zalo-shaped ``/bot<token>/sendMessage``)
and :class:`SmtpReceiver` (aiosmtpd with STARTTLS from a self-signed certificate and AUTH
LOGIN/PLAIN). Each has ``start()``/``stop()``, is a context manager, exposes ``.port``
and ``.url``, and records what it received (``.requests`` or ``.messages``); ``wait_for(n)``
blocks until n have arrived.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import ipaddress
import json
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Self

from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from wardwatch.simulators.lab import LOOPBACK, free_port


@dataclass
class Received:
    """One HTTP request a receiver got."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    json: Any
    status: int  # what the receiver answered
    time: float = field(default_factory=time.time)


class _Recorder:
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._items: list[Any] = []

    def add(self, item: Any) -> None:
        with self._cond:
            self._items.append(item)
            self._cond.notify_all()

    def snapshot(self) -> list[Any]:
        with self._cond:
            return list(self._items)

    def wait_for(self, n: int, timeout: float) -> list[Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self._items) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = len(self._items)
                    raise AssertionError(f"timed out after {timeout:g}s waiting for {n} received; got {got}")
                self._cond.wait(left)
            return list(self._items)


class _HttpReceiver:
    """An aiohttp server in a thread of its own; subclasses answer ``handle``."""

    def __init__(self, host: str = LOOPBACK) -> None:
        self.host = host
        self.port = 0
        self._rec = _Recorder()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._start_error: BaseException | None = None
        self.fail_status = 500
        self._fail_next = 0
        self._fail_always = False
        self.delay = 0.0  # seconds before each answer (to provoke client timeouts)

    # what tests steer ------------------------------------------------------------

    def fail_next(self, n: int, status: int = 500) -> None:
        with self._lock:
            self._fail_next, self.fail_status = n, status

    def fail_always(self, status: int = 500) -> None:
        with self._lock:
            self._fail_always, self.fail_status = True, status

    def recover(self) -> None:
        with self._lock:
            self._fail_next, self._fail_always = 0, False

    def _failing(self) -> int | None:
        with self._lock:
            if self._fail_always:
                return self.fail_status
            if self._fail_next > 0:
                self._fail_next -= 1
                return self.fail_status
            return None

    @property
    def requests(self) -> list[Received]:
        return self._rec.snapshot()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Received]:
        return self._rec.wait_for(n, timeout)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    # lifecycle ---------------------------------------------------------------------

    async def handle(self, request: web.Request, body: bytes, data: Any) -> tuple[int, Any]:
        raise NotImplementedError

    async def _on_request(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = None
        if self.delay:
            await asyncio.sleep(self.delay)
        status, answer = await self.handle(request, body, data)
        self._rec.add(Received(request.method, request.path, dict(request.headers), body, data, status))
        if isinstance(answer, (dict, list)):
            return web.json_response(answer, status=status)
        return web.Response(status=status, text=str(answer))

    async def _serve(self, ready: threading.Event) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._on_request)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        try:
            for attempt in range(5):
                self.port = free_port()
                try:
                    await web.TCPSite(runner, self.host, self.port).start()
                    break
                except OSError:
                    if attempt == 4:
                        raise
            ready.set()
            await self._stopping.wait()
        finally:
            await runner.cleanup()

    def _run(self, ready: threading.Event) -> None:
        try:
            asyncio.run(self._serve(ready))
        except BaseException as exc:  # reported to start()'s caller
            self._start_error = exc
            ready.set()

    def start(self) -> Self:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), name=type(self).__name__, daemon=True)
        self._thread.start()
        if not ready.wait(10) or self._start_error is not None:
            raise RuntimeError(f"{type(self).__name__} did not start: {self._start_error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stopping is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._stopping.set)
            self._thread.join(10)
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WebhookReceiver(_HttpReceiver):
    """Records every request's JSON and headers; answers 200, or ``fail_status`` for the
    next N requests (:meth:`fail_next`) or for all (:meth:`fail_always`)."""

    async def handle(self, request: web.Request, body: bytes, data: Any) -> tuple[int, Any]:
        failing = self._failing()
        if failing is not None:
            return failing, f"receiver told to answer {failing}"
        return 200, "ok"


class BotApiReceiver(_HttpReceiver):
    """A Telegram-shaped Bot API (Zalo's is the same shape): ``POST /bot<token>/sendMessage``
    with JSON ``{chat_id, text}``. Answers like the real API: ``{"ok": true, "result":
    ...}``, 401 for another token, 400 for a text longer than ``limit`` or an empty one,
    429 with ``parameters.retry_after`` after :meth:`rate_limit_next`. ``.messages`` are
    the accepted ``{chat_id, text, ...}`` bodies."""

    def __init__(self, token: str, *, limit: int = 4096, flavor: str = "telegram", host: str = LOOPBACK) -> None:
        super().__init__(host)
        self.token = token
        self.limit = limit
        self.flavor = flavor
        self._rate_limited = 0
        self.retry_after = 1
        self._accepted = _Recorder()

    def rate_limit_next(self, n: int, retry_after: int = 1) -> None:
        with self._lock:
            self._rate_limited, self.retry_after = n, retry_after

    @property
    def messages(self) -> list[dict[str, Any]]:
        return self._accepted.snapshot()

    def wait_for_messages(self, n: int, timeout: float = 10.0) -> list[dict[str, Any]]:
        return self._accepted.wait_for(n, timeout)

    @staticmethod
    def _error(code: int, description: str, **extra: Any) -> tuple[int, dict[str, Any]]:
        return code, {"ok": False, "error_code": code, "description": description, **extra}

    async def handle(self, request: web.Request, body: bytes, data: Any) -> tuple[int, Any]:
        parts = request.path.strip("/").split("/")
        if len(parts) != 2 or not parts[0].startswith("bot"):
            return self._error(404, "Not Found")
        if parts[0][3:] != self.token:
            return self._error(401, "Unauthorized")
        if parts[1] != "sendMessage" or request.method != "POST":
            return self._error(404, "Not Found: method not found")
        failing = self._failing()
        if failing is not None:
            return self._error(failing, "Internal Server Error")
        with self._lock:
            limited = self._rate_limited > 0
            if limited:
                self._rate_limited -= 1
        if limited:
            return self._error(
                429, f"Too Many Requests: retry after {self.retry_after}", parameters={"retry_after": self.retry_after}
            )
        if not isinstance(data, dict) or not data.get("chat_id"):
            return self._error(400, "Bad Request: chat_id is empty")
        text = data.get("text")
        if not isinstance(text, str) or not text.strip():
            return self._error(400, "Bad Request: message text is empty")
        # Telegram counts UTF-16 code units.
        if len(text.encode("utf-16-le")) // 2 > self.limit:
            return self._error(400, "Bad Request: message is too long")
        self._accepted.add(dict(data))
        n = len(self._accepted.snapshot())
        if self.flavor == "zalo":
            return 200, {"ok": True, "result": {"message_id": f"{n:020x}", "date": int(time.time() * 1000)}}
        return 200, {
            "ok": True,
            "result": {"message_id": n, "date": int(time.time()), "chat": {"id": data["chat_id"]}, "text": text},
        }


# SMTP ------------------------------------------------------------------------------------


def self_signed_cert(directory: Path, host: str = LOOPBACK) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (an IP address or a name in its SAN), made
    with ``cryptography``: (cert.pem, key.pem). The certificate is its own CA file."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wardwatch test SMTP")])
    try:
        san: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        san = x509.DNSName(host)
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([san]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass
class Mail:
    """One message the SMTP receiver accepted."""

    message: EmailMessage
    mail_from: str
    rcpt_tos: list[str]
    tls: bool  # the session had been upgraded with STARTTLS
    login: str | None  # who authenticated


class _Handler:
    def __init__(self, rec: _Recorder) -> None:
        self.rec = rec

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or envelope.content or b""
        if isinstance(raw, str):
            raw = raw.encode()
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        who = session.auth_data if isinstance(session.auth_data, str) else None
        self.rec.add(
            Mail(msg, str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], session.ssl is not None, who)
        )
        return "250 OK"


class SmtpReceiver:
    """aiosmtpd on a free loopback port. With ``starttls`` (the default) it offers STARTTLS
    from a self-signed certificate (``.cert_file``, which clients use as their CA file) and
    requires it before AUTH; with ``username`` it requires AUTH LOGIN or PLAIN with that
    user and password. ``.messages`` are the accepted mails, parsed with ``email``."""

    def __init__(
        self,
        *,
        username: str | None = "alerts",
        password: str = "mật-khẩu-1",
        starttls: bool = True,
        host: str = LOOPBACK,
    ) -> None:
        self.host = host
        self.port = 0
        self.username = username
        self.password = password
        self.starttls = starttls
        self._dir = Path(tempfile.mkdtemp(prefix="smtp-recv-"))
        self.cert_file, self.key_file = self_signed_cert(self._dir, host)
        self._rec = _Recorder()
        self.auth_failures = 0
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    @property
    def messages(self) -> list[Mail]:
        return self._rec.snapshot()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Mail]:
        return self._rec.wait_for(n, timeout)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if (
            isinstance(auth_data, LoginPassword)
            and auth_data.login.decode() == self.username
            and auth_data.password.decode() == self.password
        ):
            return AuthResult(success=True, auth_data=self.username)
        self.auth_failures += 1
        return AuthResult(success=False, handled=False)

    def start(self) -> Self:
        kwargs: dict[str, Any] = {}
        if self.starttls:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(self.cert_file, self.key_file)
            kwargs.update(tls_context=tls, require_starttls=True)
        if self.username is not None:
            kwargs.update(
                authenticator=self._authenticate, auth_required=True, auth_require_tls=self.starttls
            )
        last: Exception | None = None
        for _ in range(5):
            self.port = free_port()
            controller = Controller(
                _Handler(self._rec), hostname=self.host, port=self.port, ready_timeout=10,
                server_hostname=self.host, **kwargs,
            )
            try:
                controller.start()
            except (OSError, RuntimeError) as exc:
                last = exc
                continue
            self._controller = controller
            return self
        raise RuntimeError(f"SmtpReceiver did not start: {last!r}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
