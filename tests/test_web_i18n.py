"""Every string the dashboard shows exists in Vietnamese and English (collector/web/i18n.py),
and no template shows text of its own: what a person reads comes from STRINGS.

Keys are found where they are used: ``t("key")`` in the templates and in static/app.js, and
the families built at run time (``"state." + state``, ``"reason." + code``, ...) for each of
their members. The vendored files match the hashes in static/vendor/README.md.
"""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Final

import pytest

from wardwatch.agent.camera.state import REASONS
from wardwatch.collector.web import i18n
from wardwatch.collector.web.i18n import STRINGS

WEB: Final = Path(__file__).parent.parent / "collector" / "web"
TEMPLATES: Final = sorted((WEB / "templates").glob("*.html"))
APP_JS: Final = WEB / "static" / "app.js"
# Keys in a t("...") call: the first argument, a string literal.
T_CALL: Final = re.compile(r"""\bt\(\s*(["'])([a-z0-9_.]+)\1""")
# Text a template may show without i18n: the product's name, and punctuation.
ALLOWED_TEXT: Final = {"wardwatch", "/", "·", "(", ")"}
# Attributes a person reads (or hears: a screen reader).
READ_ATTRS: Final = {"title", "alt", "placeholder", "aria-label", "value", "label"}
# The camera reasons and the error classes of docs/cameras.md and docs/agent.md.
ERROR_CLASSES: Final = ("timeout", "refused", "disconnected", "unreachable", "auth", "protocol", "no_such_object",
                        "internal_error")  # fmt: skip


def used_keys() -> dict[str, set[str]]:
    """key -> the files that use it."""
    found: dict[str, set[str]] = {}
    for path in [*TEMPLATES, APP_JS]:
        for m in T_CALL.finditer(path.read_text(encoding="utf-8")):
            found.setdefault(m.group(2), set()).add(path.name)
    return found


def family_keys() -> set[str]:
    keys = {f"state.{s}" for s in i18n.STATES}
    keys |= {f"kind.{k}" for k in i18n.KINDS} | {f"kinds.{k}" for k in i18n.KINDS}
    keys |= {f"alert_state.{s}" for s in i18n.ALERT_STATES} | {f"severity.{s}" for s in i18n.SEVERITIES}
    keys |= {f"report.{k}" for k in i18n.REPORT_KINDS} | {f"report.{k}_about" for k in i18n.REPORT_KINDS}
    keys |= {f"range.{r}" for r in i18n.RANGES} | {f"fmt.{f}" for f in ("html", "csv", "json")}
    keys |= {f"reason.{r}" for r in (*REASONS, *ERROR_CLASSES)}
    keys |= {f"dur.{d}" for d in ("1h", "4h", "24h")} | {f"login.{e}" for e in ("bad_token", "rate_limited")}
    keys |= {f"live.{s}" for s in ("connecting", "live", "stale")}
    keys |= {f"chart.{c}" for c in ("port_rates", "clients", "util", "bitrate", "clock_skew", "rtt", "loss")}
    keys |= {f"series.{c}" for c in ("in_bps", "out_bps", "clients", "util_pct", "rtt_ms", "loss_pct",
                                     "clock_skew_s", "bitrate_kbps")}  # fmt: skip
    return keys


def test_the_templates_and_the_script_use_keys_at_all() -> None:
    used = used_keys()
    assert len(used) > 80, sorted(used)
    assert any("app.js" in files for files in used.values())
    assert all(any(p.name in files for files in used.values()) for p in TEMPLATES if p.name != "missing.html")


def test_every_family_in_use_is_known() -> None:
    """``t("state." + s)``: a prefix in the code, whose members family_keys() lists."""
    prefixes = {k for k in used_keys() if k.endswith(".")}
    assert prefixes, "no family in use: the test's pattern no longer finds them"
    for prefix in prefixes:
        assert any(k.startswith(prefix) for k in family_keys()), f"{prefix!r}: add its members to family_keys()"


@pytest.mark.parametrize("key", sorted({k for k in used_keys() if not k.endswith(".")} | family_keys()))
def test_every_key_in_use_has_both_languages(key: str) -> None:
    entry = STRINGS.get(key)
    assert entry is not None, f"{key!r} is used ({sorted(used_keys().get(key, {'a family'}))}) but not in STRINGS"
    for lang in i18n.LANGS:
        assert entry.get(lang, "").strip(), f"{key!r} has no {lang} text"


def test_every_string_has_both_languages_and_the_same_placeholders() -> None:
    for key, entry in STRINGS.items():
        assert set(entry) == set(i18n.LANGS), key
        holes = [set(re.findall(r"\{(\w+)\}", entry[lang])) for lang in i18n.LANGS]
        assert holes[0] == holes[1], f"{key}: placeholders differ {holes}"


def test_vietnamese_is_vietnamese() -> None:
    """The Vietnamese side is not English left in place: most of it carries diacritics."""
    marked = [k for k, e in STRINGS.items() if re.search(r"[à-ỹđĐ]", e["vi"])]
    same = [k for k, e in STRINGS.items() if e["vi"] == e["en"] and re.search(r"[a-z]{4,}", e["en"])]
    assert len(marked) > 0.7 * len(STRINGS), len(marked)
    # a few words are the same in both (Switch, Camera, product names): no more than that
    assert len(same) <= 8, same


class _Text(HTMLParser):
    """The visible text and read attributes of a template, with its jinja2 parts removed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in READ_ATTRS and value and not (tag == "input" and name == "value") and _words(value):
                self.found.append(f"<{tag} {name}={value!r}>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and _words(data):
            self.found.append(data.strip())


def _words(text: str) -> bool:
    rest = " ".join(w for w in text.split() if w not in ALLOWED_TEXT)
    return bool(re.search(r"[^\W\d_]", rest))


JINJA: Final = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda p: p.name)
def test_no_template_shows_text_of_its_own(template: Path) -> None:
    parser = _Text()
    parser.feed(JINJA.sub(" ", template.read_text(encoding="utf-8")))
    assert parser.found == [], f"{template.name}: literal text bypasses i18n: {parser.found}"


def test_the_script_shows_no_text_of_its_own() -> None:
    """app.js puts text in the page only through t(): no string literal with words lands in
    textContent, a text node, a title or an aria-label."""
    src = APP_JS.read_text(encoding="utf-8")
    bad = re.findall(r"""(?:text|title|"aria-label")\s*:\s*(["'])([^"']*[A-Za-zÀ-ỹ]{3,}[^"']*)\1""", src)
    bad += re.findall(r"""(?:textContent\s*=|createTextNode\()\s*(["'])([^"']*[A-Za-zÀ-ỹ]{3,}[^"']*)\1""", src)
    assert bad == [], bad


def test_reason_words_cover_the_codes_the_agents_send() -> None:
    for lang in i18n.LANGS:
        for code in (*REASONS, *ERROR_CLASSES):
            words = i18n.reason_words(code, lang)
            assert words and words != i18n.text("reason.other", lang, code=code), (lang, code, words)
        assert "SNMP" in i18n.reason_words("snmp_timeout", lang)
        assert i18n.reason_words("something_new", lang).endswith("something_new")  # shown, not hidden
    assert i18n.reason_words("offline", "vi") == "Không trả lời (ONVIF)"


def test_the_vendored_files_match_their_readme() -> None:
    vendor = WEB / "static" / "vendor"
    readme = (vendor / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", readme, re.M)
    assert {name for name, _ in rows} == {p.name for p in vendor.iterdir() if p.name != "README.md"}
    for name, digest in rows:
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in readme and "1.6.32" in readme
