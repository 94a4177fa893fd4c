"""systemd units without systemd: parse a unit, run ``systemd-analyze verify`` on it, and start
its ``ExecStart=`` the way systemd would (clean environment, ``$STATE_DIRECTORY``,
``$CREDENTIALS_DIRECTORY`` holding the ``LoadCredential=`` files, ``$NOTIFY_SOCKET`` for
``Type=notify``), with every absolute path moved into a temp root. For tests/test_deploy_units.py,
tests/test_deploy_doc.py and tests/test_broker_config.py; systemd is not PID 1 here.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from wardwatch.simulators.lab import Service

SYSTEMD_UNITS = Path("/usr/lib/systemd/system")


def systemd_analyze() -> str:
    """The systemd-analyze binary, or a loud failure (scripts/install-deps.sh installs systemd)."""
    found = shutil.which("systemd-analyze")
    assert found, "systemd-analyze is missing: install Debian's systemd package (scripts/install-deps.sh does)"
    return found


def verify(units: list[Path], *, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``systemd-analyze verify`` of ``units``. With ``root`` (a tree holding the binaries the
    units name), the units are copied to ROOT/etc/systemd/system and verified there, against
    a copy of this machine's own unit files (sysinit.target and the like) in ROOT/usr/lib (a
    symlink to them would not do: verify resolves their own links inside ROOT, in a loop)."""
    cmd = [systemd_analyze(), "verify"]
    names = [str(u) for u in units]
    if root is not None:
        etc = root / "etc" / "systemd" / "system"
        etc.mkdir(parents=True, exist_ok=True)
        lib = root / "usr" / "lib" / "systemd" / "system"
        if not lib.exists():
            shutil.copytree(SYSTEMD_UNITS, lib, symlinks=True)
        for u in units:
            shutil.copy(u, etc / u.name)
        cmd.append(f"--root={root}")
        names = [u.name for u in units]
    return subprocess.run([*cmd, *names], capture_output=True, text=True, timeout=60, check=False)


def security_exposure(unit: str, root: Path) -> float:
    """``systemd-analyze security --offline``'s overall exposure of a unit verified under ``root``
    (0 is the best, 10 the worst)."""
    done = subprocess.run([systemd_analyze(), "security", "--offline=true", f"--root={root}", unit],
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    found = re.search(r"Overall exposure level for \S+: ([0-9.]+)", done.stdout)
    assert found, f"no exposure level in systemd-analyze security's output:\n{done.stdout[-2000:]}\n{done.stderr}"
    return float(found.group(1))


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as {section: {key: [values in order]}}: repeated keys accumulate, as
    systemd's list settings do (an empty value is kept: it resets a list)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] | None = None
    text = path.read_text().replace("\\\n", " ")
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], {})
            continue
        assert current is not None, f"{path}: {line!r} before any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r} is not KEY=VALUE"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def one(unit: dict[str, dict[str, list[str]]], section: str, key: str) -> str:
    values = unit.get(section, {}).get(key, [])
    assert len(values) == 1, f"[{section}] {key}: expected one value, got {values}"
    return values[0]


@dataclass
class Unit:
    """A unit file and how to run it: ``mapped`` moves the absolute paths it names into a temp
    root (identity when testing on the real paths)."""

    path: Path
    mapped: Callable[[str], str]
    log_dir: Path
    service: Service | None = None
    notify: socket.socket | None = field(default=None, repr=False)
    notify_dir: Path | None = None

    @property
    def name(self) -> str:
        return self.path.stem

    def start(self, *, ready: Callable[[], bool] | None = None, timeout: float = 20.0) -> None:
        """Start ExecStart as systemd would, and return once it is up: READY=1 on the notify
        socket for Type=notify, else ``ready()`` (or at once)."""
        unit = parse_unit(self.path)
        svc = unit["Service"]
        argv = shlex.split(self.mapped(one(unit, "Service", "ExecStart")))
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "INVOCATION_ID": os.urandom(16).hex()}  # fmt: skip
        run = self.log_dir / self.name
        run.mkdir(parents=True, exist_ok=True)
        for value in svc.get("StateDirectory", []):
            dirs = [Path(self.mapped(f"/var/lib/{d}")) for d in value.split()]
            for d in dirs:
                d.mkdir(parents=True, exist_ok=True)
                d.chmod(int(svc.get("StateDirectoryMode", ["0755"])[-1], 8))
            env["STATE_DIRECTORY"] = ":".join(str(d) for d in dirs)
        for value in svc.get("ConfigurationDirectory", []):
            env["CONFIGURATION_DIRECTORY"] = ":".join(self.mapped(f"/etc/{d}") for d in value.split())
        if svc.get("LoadCredential"):
            creds = run / "credentials"
            shutil.rmtree(creds, ignore_errors=True)
            creds.mkdir(mode=0o700)
            for value in svc["LoadCredential"]:
                cred_id, _, source = value.partition(":")
                src = Path(self.mapped(source))
                assert src.is_file(), f"{self.name}: LoadCredential={value}: {src} is missing (systemd would fail)"
                shutil.copyfile(src, creds / cred_id)
                (creds / cred_id).chmod(0o400)
            env["CREDENTIALS_DIRECTORY"] = str(creds)
        for value in svc.get("Environment", []):
            for pair in shlex.split(value):
                k, _, v = pair.partition("=")
                env[k] = v
        notify = svc.get("Type", ["simple"])[-1] == "notify"
        if notify:
            self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            # A short path of its own: a socket's path must fit in 108 bytes, which xdist's tmp_path may not.
            self.notify_dir = Path(tempfile.mkdtemp(prefix="ww-notify-", dir="/tmp"))
            self.notify_dir.chmod(0o755)
            sock_path = self.notify_dir / "notify.sock"
            self.notify.bind(str(sock_path))
            sock_path.chmod(0o777)  # as /run/systemd/notify: a service that dropped to its user writes it too
            env["NOTIFY_SOCKET"] = str(sock_path)

        def is_ready(_service: Service, wait: float) -> bool:
            if self.notify is not None:
                self.notify.settimeout(wait)
                try:
                    return b"READY=1" in self.notify.recv(4096).split(b"\n")
                except TimeoutError:
                    return False
            return ready() if ready is not None else True

        self.service = Service(
            name=self.name, argv=["env", "-i", *(f"{k}={v}" for k, v in env.items()), *argv], host="127.0.0.1",
            port=0, run_dir=run, log_path=run / "journal.log", ready=is_ready, ready_timeout=timeout,
        )  # fmt: skip
        try:
            self.service.start()
        except BaseException:
            self._close_notify()
            raise

    def stop(self) -> int:
        """SIGTERM, as ``systemctl stop`` sends it; the exit status, within TimeoutStopSec."""
        assert self.service is not None and self.service.proc is not None, f"{self.name} was never started"
        unit = parse_unit(self.path)
        limit = _seconds(unit["Service"].get("TimeoutStopSec", ["90s"])[-1])
        proc = self.service.proc
        self.service.terminate()  # SIGTERM to the PID
        deadline = time.monotonic() + limit
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        self.service.wait_or_kill(deadline)  # SIGKILL past TimeoutStopSec, as systemd does
        if proc.returncode == -signal.SIGKILL:
            self._close_notify()
            raise AssertionError(f"{self.name} did not stop within TimeoutStopSec={limit:g}s of SIGTERM")
        self._close_notify()
        return proc.returncode

    def _close_notify(self) -> None:
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        if self.notify_dir is not None:
            shutil.rmtree(self.notify_dir, ignore_errors=True)
            self.notify_dir = None

    def log(self) -> str:
        return self.service.log_tail(60) if self.service is not None else ""


def _seconds(text: str) -> float:
    found = re.fullmatch(r"(\d+)(s|min)?", text)
    assert found, f"cannot read a time span {text!r}"
    return int(found.group(1)) * (60 if found.group(2) == "min" else 1)
