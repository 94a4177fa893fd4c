"""Zalo Bot API ``sendMessage``: what Vietnamese staff read. 2,000 characters at most.

The Zalo Bot Platform (bot.zaloplatforms.com, formerly bot.zapps.me) copies Telegram's
shape: ``POST {base_url}/bot{token}/sendMessage`` with ``{chat_id, text}`` (text 1 to 2,000
characters), answered ``{"ok": true, "result": {"message_id", "date"}}`` or ``{"ok":
false, "error_code", "description"}``. It has no link-preview or parse-mode options: the
text is sent as is.
"""

from __future__ import annotations

from typing import Any, Final

from wardwatch.collector.alerts import text
from wardwatch.collector.alerts.channels.telegram import BotApiSender
from wardwatch.collector.alerts.config import ZaloChannel
from wardwatch.collector.alerts.model import Notice

ZALO_LIMIT: Final = 2000


class ZaloSender(BotApiSender):
    limit = ZALO_LIMIT
    service = "Zalo"

    def __init__(self, name: str, cfg: ZaloChannel) -> None:
        super().__init__(name, cfg)
        self.cfg = cfg

    def body(self, notice: Notice) -> dict[str, Any]:
        return {"chat_id": self.cfg.chat_id, "text": text.render(notice, limit=self.limit)}
