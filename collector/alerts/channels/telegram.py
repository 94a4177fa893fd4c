"""Telegram Bot API ``sendMessage``: plain text (no ``parse_mode``), 4,096 characters at most.

``POST {base_url}/bot{token}/sendMessage`` with ``{chat_id, text, disable_web_page_preview}``.
Telegram answers ``{"ok": true, "result": ...}``, or ``{"ok": false, "error_code",
"description"}``; a 429 carries ``parameters.retry_after``, which is honoured (bounded).
The token is part of the URL, so it is scrubbed from every error.
"""

from __future__ import annotations

import json
from typing import Any, Final

from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.channels import (
    HttpSender,
    RateLimited,
    retry_after_header,
    retryable_status,
    snippet,
)
from wardwatch.collector.alerts.config import TelegramChannel, ZaloChannel
from wardwatch.collector.alerts.model import DeliveryError, Notice

TELEGRAM_LIMIT: Final = 4096


class BotApiSender(HttpSender):
    """A Telegram-shaped bot API (Telegram's and Zalo's share the shape)."""

    limit: int = TELEGRAM_LIMIT
    service: str = "Telegram"

    def __init__(self, name: str, cfg: TelegramChannel | ZaloChannel) -> None:
        token = cfg.token.get_secret_value()
        super().__init__(name, timeout=cfg.timeout, redact=(token,))
        self._url = f"{cfg.base_url.rstrip('/')}/bot{token}/sendMessage"

    def body(self, notice: Notice) -> dict[str, Any]:
        raise NotImplementedError

    async def send(self, notice: Notice) -> None:
        body = json.dumps(self.body(notice), ensure_ascii=False).encode()
        status, headers, data = await self.post_json(self._url, body)
        try:
            answer = json.loads(data) if data else {}
        except ValueError:
            answer = {}
        if not isinstance(answer, dict):
            answer = {}
        if 200 <= status < 300 and answer.get("ok") is True:
            return
        code = answer.get("error_code")
        code = code if isinstance(code, int) else status
        described = answer.get("description") or snippet(data) or f"HTTP {status}"
        message = self._scrub(f"{self.service} {code}: {described}")
        params = answer.get("parameters")
        if code == 429 or status == 429:
            wait: Any = params.get("retry_after") if isinstance(params, dict) else None
            if not isinstance(wait, int | float):
                wait = retry_after_header(headers)
            raise RateLimited(message, retry_after=float(wait if wait is not None else 1.0))
        if 200 <= status < 300:
            # A 2xx without ok: true: the API refused (or a proxy answered something else).
            raise DeliveryError(message, retry=retryable_status(code) if code != status else False, status=code)
        raise DeliveryError(message, retry=retryable_status(status), status=status)


class TelegramSender(BotApiSender):
    def __init__(self, name: str, cfg: TelegramChannel) -> None:
        super().__init__(name, cfg)
        self.cfg = cfg

    def body(self, notice: Notice) -> dict[str, Any]:
        return {
            "chat_id": self.cfg.chat_id,
            "text": text.render(notice, limit=self.limit),
            "disable_web_page_preview": True,
        }
