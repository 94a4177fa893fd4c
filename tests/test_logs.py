"""Logs: one line per event with the device's id; journald's form under systemd; JSON for shippers."""

from __future__ import annotations

import json
import logging
import os
import re
import time
from pathlib import Path

import pytest

from tests.util import wait_for, write_yaml
from wardwatch import logs, redact
from wardwatch.simulators.lab import free_port, script

STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")
COMMUNITY = "ro-s3cr3t-community"


def record(msg: str, *args: object, level: int = logging.WARNING, exc: bool = False) -> logging.LogRecord:
    exc_info = None
    if exc:
        try:
            raise ValueError("line one\nline two")
        except ValueError:
            import sys

            exc_info = sys.exc_info()
    return logging.LogRecord("wardwatch.agent.core.supervisor", level, __file__, 1, msg, args, exc_info)


def test_a_device_line_names_the_device_in_json_even_after_redaction() -> None:
    rec = record("device %s (%s): timeout: no answer", "sw-a3", "10.0.3.2")
    logs._Subject().filter(rec)
    redact.RedactingFilter().filter(rec)
    out = json.loads(logs.JsonFormatter({"agent": "cam-an-1", "ward": "cam-an"}).format(rec))
    assert out["device"] == "sw-a3" and out["level"] == "WARNING"
    assert out["msg"] == "device sw-a3 (10.0.3.2): timeout: no answer"
    assert out["agent"] == "cam-an-1" and out["ward"] == "cam-an"
    assert out["ts"].endswith("Z")


def test_a_traceback_stays_on_one_line_in_every_form() -> None:
    rec = record("device %s: poll failed inside wardwatch", "cam-7", exc=True)
    for formatter in (logs.TextFormatter(logs.TEXT_FORMAT), logs.TextFormatter(logs.JOURNAL_FORMAT, priority=True),
                      logs.JsonFormatter({})):
        text = formatter.format(rec)
        assert "\n" not in text, text
        assert "line two" in text
    assert logs.TextFormatter(logs.JOURNAL_FORMAT, priority=True).format(rec).startswith(
        "<4>WARNING wardwatch.agent.core.supervisor: device cam-7: poll failed")
    assert json.loads(logs.JsonFormatter({}).format(rec))["exc"].endswith("ValueError: line one\nline two")


def agent_config(tmp_path: Path) -> Path:
    """A device nobody answers for (a free UDP port) and a broker that is not there: both log."""
    return write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "cam-an-1", "ward": "cam-an"},
        "mqtt": {"host": "127.0.0.1", "port": free_port()},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "auth": {"v2": {"snmp": {"version": "2c", "community": COMMUNITY}}},
        "devices": [{"id": "sw-quiet", "kind": "switch", "host": "127.0.0.1", "port": free_port("udp"),
                     "auth": "v2", "interval": "1s", "timeout": "0.3s", "retries": 0}],
    })


def run_agent(tmp_path: Path, args: list[str], *, journal: bool = False) -> list[str]:
    agent = script("wardwatch-agent", [*args, "run", "-c", str(agent_config(tmp_path))], run_dir=tmp_path)
    agent.log_path.touch()
    if journal:  # what systemd gives a service whose stderr is the journal's stream
        st = os.stat(agent.log_path)
        agent.env = {"JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}"}
    else:  # a child of such a service whose stderr went elsewhere: not the journal
        agent.env = {"JOURNAL_STREAM": "1:1"}
    try:
        agent.start()
        wait_for(lambda: "sw-quiet" in agent.log_path.read_text(), timeout=15, what="the device's warning")
        time.sleep(0.5)
    finally:
        agent.stop()
    text = agent.log_path.read_text()
    assert COMMUNITY not in text
    return [line for line in text.splitlines() if not line.startswith("--- wardwatch: starting")]


@pytest.mark.services
def test_json_logs_are_one_object_a_line_with_the_device_and_the_agent(tmp_path: Path) -> None:
    lines = run_agent(tmp_path, ["--log-format", "json"])
    events = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"ts", "level", "logger", "msg"} <= e.keys() for e in events)
    assert all(e["agent"] == "cam-an-1" and e["ward"] == "cam-an" for e in events)
    device = [e for e in events if e.get("device") == "sw-quiet"]
    assert device and all(e["msg"].startswith("device sw-quiet") for e in device), lines
    assert any(e["level"] == "WARNING" for e in device)


@pytest.mark.services
def test_under_journald_no_time_and_a_priority_elsewhere_the_time(tmp_path: Path) -> None:
    journal = run_agent(tmp_path / "j", [], journal=True)
    assert journal and all(re.match(r"^<[2-7]>(DEBUG|INFO|WARNING|ERROR|CRITICAL) ", line) for line in journal), journal
    assert any(line.startswith("<4>WARNING ") and "device sw-quiet" in line for line in journal), journal
    text = run_agent(tmp_path / "t", [])
    assert text and all(STAMP.match(line) for line in text), text


def test_the_collector_takes_the_log_options_before_or_after_its_command() -> None:
    from wardwatch.collector.cli import _parser

    for argv in (["--log-format", "json", "run", "-c", "x.yaml"], ["run", "-c", "x.yaml", "--log-format", "json"]):
        assert _parser().parse_args(argv).log_format == "json"
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "-c", "x.yaml", "--log-format", "xml"])
