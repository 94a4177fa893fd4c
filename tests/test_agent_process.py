"""The agent as a process: retained status and Last Will, and seq across a SIGKILL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.test_outbox_publisher import Listener
from tests.util import wait_for, write_yaml
from wardwatch import wire
from wardwatch.simulators.lab import Service, script

pytestmark = pytest.mark.services
WARD = "cam-an"


def test_sigkill_sends_the_will_and_seq_continues_without_gaps(
    tmp_path: Path, mosquitto: Service, unique: str
) -> None:
    agent_id = f"agent-{unique}"
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": agent_id, "ward": WARD},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
        "outbox": {"path": str(tmp_path / "outbox.db")},
        "self_interval": "5s",  # the agent's own metrics: a batch every 5 s, no devices needed
    })
    listener = Listener(mosquitto.port, f"wardwatch/v1/{WARD}/{agent_id}/#")
    agent = script("wardwatch-agent", ["run", "-c", str(cfg)], run_dir=tmp_path / "agent")

    def states() -> list[str]:
        with listener.lock:
            return [json.loads(p)["state"] for t, p, _ in listener.messages if t.endswith("/status")]

    try:
        agent.start()
        wait_for(lambda: states()[-1:] == ["online"], timeout=10, what="status online")
        wait_for(lambda: len(listener.seqs()) >= 2, timeout=20, what="two batches before the kill")
        agent.kill()
        wait_for(lambda: states()[-1:] == ["offline"], timeout=10, what="the Last Will's offline")
        before = max(listener.seqs())

        agent.start()
        wait_for(lambda: states()[-1:] == ["online"], timeout=10, what="status online again")
        wait_for(lambda: max(listener.seqs()) >= before + 2, timeout=20, what="batches after the restart")
    finally:
        agent.stop()
        listener.close()
    seqs = listener.seqs()
    # Every seq from 0 on arrived (a repeat of an unacknowledged one is allowed), none skipped.
    assert sorted(set(seqs)) == list(range(max(seqs) + 1)), seqs
    with listener.lock:
        status = [wire.decode(p) for t, p, _ in listener.messages if t.endswith("/readings")]
    assert all(r.measurement == "agent" for b in status for r in b.readings)


def test_unusable_outbox_path_exits_1_naming_it(tmp_path: Path) -> None:
    import subprocess

    from tests.util import BIN

    (tmp_path / "file").write_text("not a directory")
    cfg = write_yaml(tmp_path / "agent.yaml", {
        "agent": {"id": "a1", "ward": WARD},
        "outbox": {"path": str(tmp_path / "file" / "outbox.db")},
    })
    proc = subprocess.run([str(BIN / "wardwatch-agent"), "--log-level", "ERROR", "run", "-c", str(cfg)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"wardwatch-agent: outbox.path: cannot open {tmp_path / 'file' / 'outbox.db'}: ")
