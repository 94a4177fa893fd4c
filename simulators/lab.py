"""Start and stop the real services that tests and the demo talk to.

Why this module exists
----------------------
wardwatch's tests talk to real peers (STYLE.md §10): a real Mosquitto, a real
InfluxDB 1.6, net-snmp's snmpd and snmpsim.  The Debian packages are installed
on every machine, but a ``policy-rc.d`` there stops them from auto-starting, and
we would not want the system-wide instances anyway: a test must not share a
broker or a database with anything else.  So every helper here

* writes its own minimal config (the ones checked in
  ``shared/reference/services.md``) into a directory of its own under the
  caller's ``run_dir`` (``run_dir/<kind>-<port>/``), so several services, or two
  of one kind, can share one ``run_dir`` without clobbering each other;
* listens on a free port on 127.0.0.1 only, never on a default port;
* sends the process's stdout and stderr to a log file, whose last lines go into
  every :class:`ServiceError`, so a failure says *why*;
* waits for readiness by polling a real protocol check (MQTT CONNACK, HTTP
  ``/ping``, an SNMP GET) against a deadline, never with a fixed sleep, and
  fails at once, with the log, if the process exits while starting;
* stops the process by its PID (SIGTERM, a bounded wait, then SIGKILL) and reaps
  it.  Never by process name: other people's processes with the
  same name may be running on the machine.

Everything runs as root here, which two of the services object to: Mosquitto
switches to the user ``mosquitto`` (who cannot read a root-owned run dir) unless
the config says ``user root``, and snmpsim refuses to run as root unless
``SNMPSIM_ALLOW_ROOT=true`` is set.

A service left running when the interpreter exits (a test that crashed before
its teardown, the demo killed with Ctrl-C) is stopped by an ``atexit`` hook, registered
when the first service starts (importing this module registers nothing).
This is the test and demo lab: no agent or collector imports it.

Only the standard library is used, so that the helpers work before the
project's optional dependencies are installed.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar

__all__ = [
    "InfluxService",
    "Service",
    "ServiceError",
    "SnmpsimAgent",
    "SnmpsimService",
    "find_binary",
    "free_port",
    "start_influxdb",
    "start_mosquitto",
    "start_snmpd",
    "start_snmpsim",
]

LOOPBACK = "127.0.0.1"
DEFAULT_READY_TIMEOUT = 20.0
LOG_TAIL_LINES = 30
# The OID every readiness probe asks for: sysUpTime.0, which snmpd always has
# and every snmpsim recording we ship has too.
SYS_UPTIME_OID = "1.3.6.1.2.1.1.3.0"


class ServiceError(RuntimeError):
    """A service could not be found, started, made ready, or queried.

    The message names the service, the command line and the last lines of its
    log, so that a failing test says why without anyone digging for files.
    """


def _error(service: Service, reason: str, lines: int = LOG_TAIL_LINES) -> ServiceError:
    tail = service.log_tail(lines)
    return ServiceError(
        f"{service.name}: {reason}\n"
        f"  command: {shlex.join(service.argv)}\n"
        f"  log {service.log_path} (last {lines} lines):\n" + (tail if tail else "  <empty>")
    )


# --------------------------------------------------------------------------- ports, binaries


# Where free_port looks. The kernel hands out ports of its ephemeral range to every
# outgoing connection, and bind(0) picks from that range too: a port probed there may be
# taken by anyone's connect() before our service binds it. So free_port hands out ports
# below the ephemeral range, where only a bind can take them, and, under pytest-xdist,
# each worker from a block of its own (PYTEST_XDIST_WORKER gwN of
# PYTEST_XDIST_WORKER_COUNT), so that two workers never probe the same port. Within a
# process the ports go round the block from a random start: a port just handed out (and
# perhaps not bound yet, or stopped to be restarted on the same port) comes again only
# after the whole block has.
PORT_FLOOR = 10000
_MIN_BLOCK = 200
_next_port: dict[tuple[int, int], int] = {}


def _ephemeral_low() -> int:
    try:
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        return int(text.split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def port_block() -> tuple[int, int] | None:
    """The ports ``[low, high)`` this process hands out, or None to let the kernel choose
    (no room below its ephemeral range)."""
    top = _ephemeral_low()
    try:
        workers = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
        worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw"))
    except ValueError:
        workers, worker = 1, 0
    size = (top - PORT_FLOOR) // workers
    if size < _MIN_BLOCK or not 0 <= worker < workers:
        return None
    low = PORT_FLOOR + worker * size
    return low, low + size


def _probe(sock_type: int, host: str, port: int) -> int | None:
    with socket.socket(socket.AF_INET, sock_type) as s:
        try:
            s.bind((host, port))
        except OSError:
            return None
        return int(s.getsockname()[1])


def free_port(kind: Literal["tcp", "udp"] = "tcp", host: str = LOOPBACK, *, avoid: Collection[int] = ()) -> int:
    """Return a port on ``host`` that is free right now and not in ``avoid`` (ports already
    handed out but not yet bound), from this process's block (:func:`port_block`).

    Between the probe and the service's bind another process could still take it; in
    this process's block nobody else probes, and a connect() never picks it, so only a
    stranger binding that very port can; a service that loses the race fails fast with
    its log.
    """
    sock_type = {"tcp": socket.SOCK_STREAM, "udp": socket.SOCK_DGRAM}[kind]
    block = port_block()
    if block is None:
        for _ in range(50):
            port = _probe(sock_type, host, 0)
            if port is not None and port not in avoid:
                return port
        raise ServiceError(f"could not find a free {kind} port outside {sorted(avoid)}")
    low, high = block
    size = high - low
    start = _next_port.setdefault(block, low + random.randrange(size))
    for i in range(size):
        port = low + (start - low + i) % size
        if port in avoid or _probe(sock_type, host, port) is None:
            continue
        _next_port[block] = low + (port - low + 1) % size
        return port
    raise ServiceError(f"no free {kind} port in {low}-{high - 1} outside {sorted(avoid)}")


def find_binary(name: str) -> str:
    """Find an executable on PATH, in /usr/sbin and /usr/bin (root's sbin is not
    always on PATH), or beside the running interpreter (snmpsim in the venv)."""
    found = shutil.which(name)
    if found:
        return found
    candidates = [
        Path("/usr/sbin"),
        Path("/usr/bin"),
        Path(sys.prefix) / "bin",
        Path(sys.executable).parent,
    ]
    for directory in candidates:
        path = directory / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    raise ServiceError(f"{name} not found: run `make deps` (scripts/install-deps.sh)")


# --------------------------------------------------------------------------- Service

# A readiness check: given the service and the time this attempt may take, say
# whether the service answers.  It must return within roughly that time and turn
# "not yet" (connection refused, timeout) into False rather than raising.
ReadyCheck = Callable[["Service", float], bool]

_LIVE: dict[int, Service] = {}
_HOOKED: list[bool] = []


def _hook() -> None:
    atexit.register(_stop_leftovers)
    _HOOKED.append(True)


def _stop_leftovers() -> None:
    for service in list(_LIVE.values()):
        with contextlib.suppress(Exception):
            service.stop(timeout=5.0)


@dataclass
class Service:
    """One process we started, with what it takes to restart it identically.

    ``run_dir`` is the service's own directory (config, data, log); ``argv`` is
    fixed at creation, so :meth:`start` after :meth:`stop` or :meth:`kill`
    brings the same service back on the same port with the same data.
    """

    name: str
    argv: list[str]
    host: str
    port: int
    run_dir: Path
    log_path: Path
    env: dict[str, str] | None = None
    ready: ReadyCheck | None = field(default=None, repr=False)
    ready_timeout: float = DEFAULT_READY_TIMEOUT
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        """The PID of the current (or last) process; stays valid after stop()."""
        if self.proc is None:
            raise ServiceError(f"{self.name}: never started")
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start ``argv`` (again) and return once the service answers.

        Raises ServiceError, with the log tail, if the process exits while
        starting or is not ready within ``ready_timeout`` seconds; in the
        latter case the process is stopped first, so nothing is left behind.
        """
        if self.running():
            raise ServiceError(f"{self.name}: already running as pid {self.pid}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        with self.log_path.open("ab") as log:
            log.write(f"--- wardwatch: starting {shlex.join(self.argv)}\n".encode())
            log.flush()
            try:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.DEVNULL,
                    # Its own process group: a Ctrl-C at the terminal reaches only our
                    # process, which then stops the services in order, by PID.
                    process_group=0,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.run_dir,
                    env=env,
                )
            except OSError as exc:
                raise _error(self, f"cannot execute: {exc}") from exc
        if not _HOOKED:  # registered at the first start, never at import
            _hook()
        _LIVE[id(self)] = self
        self._wait_ready()

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + self.ready_timeout
        interval = 0.05
        while True:
            code = self.proc.poll()
            if code is not None:
                _LIVE.pop(id(self), None)
                raise _error(self, f"exited with status {code} while starting")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.stop()
                raise _error(self, f"not ready after {self.ready_timeout:g} s")
            if self.ready is None or self.ready(self, min(1.0, remaining)):
                # The check may have raced with an exit: report that, not success.
                if self.proc.poll() is None:
                    return
                continue
            time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            interval = min(interval * 1.5, 0.25)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the PID, wait up to ``timeout`` s, then SIGKILL. Idempotent."""
        self.terminate()
        self.wait_or_kill(time.monotonic() + timeout)

    def stop_with_code(self, timeout: float = 20.0) -> int:
        """SIGTERM the PID and wait up to ``timeout`` s for its exit status (a clean stop is 0);
        SIGKILL after that, and the status says so (-9)."""
        self.terminate()
        proc = self.proc
        if proc is None:
            raise ServiceError(f"{self.name}: never started")
        try:
            return proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return proc.wait(timeout=10)
        finally:
            _LIVE.pop(id(self), None)

    def terminate(self) -> None:
        """Send SIGTERM and return at once: to stop several processes together, terminate
        them all, then :meth:`wait_or_kill` each against one deadline."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    def wait_or_kill(self, deadline: float) -> None:
        """Wait for the process to exit until ``deadline`` (time.monotonic), then SIGKILL it."""
        proc = self.proc
        _LIVE.pop(id(self), None)
        if proc is None or proc.poll() is not None:
            return
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        """SIGKILL the PID now and reap it (for fault-injection tests)."""
        proc = self.proc
        _LIVE.pop(id(self), None)
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait()

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            data = self.log_path.read_bytes()
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Service:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _service_dir(run_dir: Path, kind: str, port: int) -> Path:
    path = Path(run_dir).resolve() / f"{kind}-{port}"
    path.mkdir(parents=True, exist_ok=True)
    return path


PORT_ATTEMPTS = 3
# What the services log when their port is taken: Mosquitto and influxd, then snmpd.
_PORT_TAKEN = ("address already in use", "error opening specified endpoint")
S = TypeVar("S", bound=Service)


def _on_free_port(port: int | None, kind: Literal["tcp", "udp"], start: Callable[[int], S]) -> S:
    """``start(port)``; with no port given, on a free one, and on another free one (up to
    PORT_ATTEMPTS in all) when the service exits because someone bound it first. Any
    other failure, or a port the caller chose, raises at once."""
    if port is not None:
        return start(port)
    for attempt in range(1, PORT_ATTEMPTS + 1):
        try:
            return start(free_port(kind))
        except ServiceError as exc:
            if attempt == PORT_ATTEMPTS or not any(m in str(exc).lower() for m in _PORT_TAKEN):
                raise
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- Mosquitto


# MQTT 3.1.1 CONNECT: protocol "MQTT", level 4, clean session, keepalive 10 s.
def _mqtt_connect_packet(client_id: str) -> bytes:
    cid = client_id.encode()
    variable = b"\x00\x04MQTT\x04\x02\x00\x0a"
    payload = len(cid).to_bytes(2, "big") + cid
    remaining = len(variable) + len(payload)
    assert remaining < 128  # one-byte remaining length is enough for our id
    return bytes([0x10, remaining]) + variable + payload


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def _mqtt_ready(service: Service, timeout: float) -> bool:
    """TCP connect, send CONNECT, expect CONNACK with return code 0."""
    try:
        with socket.create_connection((service.host, service.port), timeout=timeout) as sock:
            sock.settimeout(timeout)
            sock.sendall(_mqtt_connect_packet(f"wardwatch-ready-{os.getpid()}"))
            connack = _recv_exact(sock, 4)
            with contextlib.suppress(OSError):
                sock.sendall(b"\xe0\x00")  # DISCONNECT
    except OSError:
        return False
    return connack == b"\x20\x02\x00\x00"


def start_mosquitto(
    run_dir: Path,
    *,
    port: int | None = None,
    max_queued_messages: int = 0,
    persistence: bool = False,
) -> Service:
    """Start Mosquitto 2.0 on 127.0.0.1:port (a free one by default, see :func:`_on_free_port`).

    ``max_queued_messages`` is always written to the config: Mosquitto's default
    of 1000 queued QoS 1/2 messages per client silently drops the excess for a
    slow subscriber ("Outgoing messages are being dropped"), which would turn
    a backlog test into a flaky loss.  0 means unlimited.
    """
    if max_queued_messages < 0:
        raise ValueError("max_queued_messages must be >= 0 (0 = unlimited)")
    return _on_free_port(port, "tcp", lambda p: _start_mosquitto(run_dir, p, max_queued_messages, persistence))


def _start_mosquitto(run_dir: Path, port: int, max_queued_messages: int, persistence: bool) -> Service:
    sdir = _service_dir(run_dir, "mosquitto", port)
    conf = sdir / "mosquitto.conf"
    lines = [
        "# written by wardwatch.simulators.lab",
        "per_listener_settings false",
        f"listener {port} {LOOPBACK}",
        "allow_anonymous true",
        # Started as root, mosquitto would switch to the user `mosquitto`, who
        # cannot write a root-owned run dir.
        "user root",
        # Deliberate: the default 1000 drops messages silently; 0 = unlimited.
        f"max_queued_messages {max_queued_messages}",
        # stderr is redirected to the log file by Service.start; a log_dest file
        # in an unwritable directory would fail silently.
        "log_dest stderr",
        "log_timestamp_format %Y-%m-%dT%H:%M:%S",
    ]
    if persistence:
        data = sdir / "data"
        data.mkdir(exist_ok=True)
        # mosquitto concatenates location and file name: keep the trailing slash.
        lines += ["persistence true", f"persistence_location {data}/"]
    else:
        lines.append("persistence false")
    conf.write_text("\n".join(lines) + "\n")
    service = Service(
        name="mosquitto",
        argv=[find_binary("mosquitto"), "-c", str(conf)],
        host=LOOPBACK,
        port=port,
        run_dir=sdir,
        log_path=sdir / "mosquitto.log",
        ready=_mqtt_ready,
    )
    service.start()
    return service


# --------------------------------------------------------------------------- InfluxDB 1.6


def _ping_204(service: Service, timeout: float) -> bool:
    """Ready when ``GET /ping`` answers 204 (InfluxDB 1.x and VictoriaMetrics alike)."""
    url = f"http://{service.host}:{service.port}/ping"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return int(resp.status) == 204
    except (OSError, urllib.error.URLError):
        return False


_READ_STATEMENTS = ("SELECT", "SHOW")


@dataclass
class InfluxService(Service):
    """An influxd 1.6 process with a tiny client for its v1 HTTP API."""

    rpc_port: int = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def query(self, q: str, *, db: str | None = None, epoch: str | None = None) -> dict[str, Any]:
        """Run InfluxQL through ``/query`` and return the parsed JSON.

        Reads (SELECT/SHOW) go as GET; anything else as POST, which InfluxDB
        1.x requires for writes such as CREATE DATABASE.  ``epoch`` ("ns",
        "u", "ms", "s") returns times as integers instead of RFC 3339 strings.
        Raises ServiceError on an HTTP error or an ``error`` in any result.
        """
        params = {"q": q}
        if db is not None:
            params["db"] = db
        if epoch is not None:
            params["epoch"] = epoch
        encoded = urllib.parse.urlencode(params)
        if q.lstrip().upper().startswith(_READ_STATEMENTS):
            request = urllib.request.Request(f"{self.url}/query?{encoded}", method="GET")
        else:
            request = urllib.request.Request(
                f"{self.url}/query",
                data=encoded.encode(),
                method="POST",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
            )
        try:
            with urllib.request.urlopen(request, timeout=10.0) as resp:
                body = resp.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read().decode("utf-8", errors="replace").strip()
            raise ServiceError(f"influxdb: query {q!r} failed: HTTP {exc.code}: {detail}") from exc
        except OSError as exc:
            raise ServiceError(f"influxdb: query {q!r} failed: {exc}") from exc
        result: dict[str, Any] = json.loads(body)
        if "error" in result:
            raise ServiceError(f"influxdb: query {q!r} failed: {result['error']}")
        for statement in result.get("results", []):
            if "error" in statement:
                raise ServiceError(f"influxdb: query {q!r} failed: {statement['error']}")
        return result

    def create_database(self, name: str) -> None:
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        self.query(f'CREATE DATABASE "{quoted}"')

    def points(self, q: str, *, db: str, epoch: str | None = None) -> list[dict[str, Any]]:
        """Rows of the first statement's result as dicts: column -> value, plus
        the series' tags (for GROUP BY queries), in server order."""
        results = self.query(q, db=db, epoch=epoch).get("results", [])
        if not results:
            return []
        rows: list[dict[str, Any]] = []
        for series in results[0].get("series", []):
            tags = series.get("tags", {})
            columns = series["columns"]
            for values in series.get("values", []):
                row = dict(tags)
                row.update(zip(columns, values, strict=True))
                rows.append(row)
        return rows


def start_influxdb(run_dir: Path, *, port: int | None = None, auth: bool = False, http_log: bool = False,
                   data: Mapping[str, str] | None = None,
                   cls: type[InfluxService] = InfluxService) -> InfluxService:  # fmt: skip
    """Start influxd 1.6 with HTTP on 127.0.0.1:port and its RPC
    (``bind-address``, used by backup/restore) on a second free port. ``auth`` turns on
    ``auth-enabled`` (``cls`` then says how to query it), ``http_log`` its request and query
    logs; ``data`` adds settings to its ``[data]`` section, as TOML values."""
    return _on_free_port(port, "tcp", lambda p: _start_influxdb(run_dir, p, auth=auth, http_log=http_log,
                                                                data=data or {}, cls=cls))  # fmt: skip


def _start_influxdb(run_dir: Path, port: int, *, auth: bool, http_log: bool, data: Mapping[str, str],
                    cls: type[InfluxService]) -> InfluxService:  # fmt: skip
    extra = "".join(f"  {k} = {v}\n" for k, v in data.items())
    rpc_port = free_port("tcp", avoid={port})
    sdir = _service_dir(run_dir, "influxdb", port)
    conf = sdir / "influxdb.conf"
    conf.write_text(
        f"""# written by wardwatch.simulators.lab
reporting-disabled = true
bind-address = "{LOOPBACK}:{rpc_port}"

[meta]
  dir = "{sdir / "meta"}"

[data]
  dir = "{sdir / "data"}"
  wal-dir = "{sdir / "wal"}"
  query-log-enabled = {str(http_log).lower()}
{extra}
[monitor]
  store-enabled = false

[http]
  bind-address = "{LOOPBACK}:{port}"
  auth-enabled = {str(auth).lower()}
  log-enabled = {str(http_log).lower()}
"""
    )
    service = cls(
        name="influxdb",
        argv=[find_binary("influxd"), "-config", str(conf)],
        host=LOOPBACK,
        port=port,
        run_dir=sdir,
        log_path=sdir / "influxdb.log",
        ready=_ping_204,
        rpc_port=rpc_port,
    )
    service.start()
    return service


# --------------------------------------------------------------------------- VictoriaMetrics


@dataclass
class VictoriaService(Service):
    """Debian's victoria-metrics: a real server for the influx api v2 writer and a sink that is
    not the bottleneck for the collector's benchmarks. It takes ``/api/v2/write`` (org and
    bucket ignored) and line protocol on ``/write``, keeps each field as a
    ``{measurement}_{field}`` metric with the tags as labels (strings become 0), and gives it
    back after a flush. Its ``/query`` is not InfluxQL (a SHOW DATABASES stub).
    ``stop()`` then ``start()`` brings it back with its data."""

    FLUSH_SETTLE = 1.5  # after /internal/force_flush, until reads see the points

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def flush(self) -> None:
        """Make everything written so far readable (about FLUSH_SETTLE s later)."""
        with urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=30) as resp:
            resp.read()
        time.sleep(self.FLUSH_SETTLE)

    def export(self, match: str, *, flush: bool = True) -> list[dict[str, Any]]:
        """Every series matching the selector ``match`` (``{__name__=~"m_.*"}``), as
        ``{"metric": {labels}, "values": [...], "timestamps": [ms...]}``."""
        if flush:
            self.flush()
        q = urllib.parse.urlencode({"match[]": match, "start": "0"})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=30) as resp:
            body = resp.read().decode()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def samples(self, match: str, *, flush: bool = True) -> dict[tuple[tuple[str, str], ...], dict[int, float]]:
        """``export`` as {sorted labels (with __name__): {timestamp ms: value}}."""
        out: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
        for series in self.export(match, flush=flush):
            key = tuple(sorted(series["metric"].items()))
            out.setdefault(key, {}).update(zip(series["timestamps"], series["values"], strict=True))
        return out

    def count(self, metric: str) -> int:
        """Samples of ``metric`` in the last day (after a flush)."""
        self.flush()
        q = urllib.parse.urlencode({"query": f"sum(count_over_time({metric}[1d]))"})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{q}", timeout=30) as resp:
            result = json.load(resp)["data"]["result"]
        return int(float(result[0]["value"][1])) if result else 0


def start_victoria(run_dir: Path, *, port: int | None = None) -> VictoriaService:
    """victoria-metrics on 127.0.0.1:port (a free one by default), its data under ``run_dir``,
    one day's retention."""
    return _on_free_port(port, "tcp", lambda p: _start_victoria(run_dir, p))


def _start_victoria(run_dir: Path, port: int) -> VictoriaService:
    sdir = _service_dir(run_dir, "victoria", port)
    service = VictoriaService(
        name="victoria-metrics",
        argv=[find_binary("victoria-metrics"), f"-storageDataPath={sdir / 'data'}",
              f"-httpListenAddr={LOOPBACK}:{port}", "-retentionPeriod=1d", "-search.latencyOffset=0s",
              "-loggerLevel=ERROR"],
        host=LOOPBACK,
        port=port,
        run_dir=sdir,
        log_path=sdir / "victoria.log",
        ready=_ping_204,
    )  # fmt: skip
    service.start()
    return service


# --------------------------------------------------------------------------- SNMP


def _snmpget_ok(host: str, port: int, community: str, timeout: float) -> bool:
    argv = [
        find_binary("snmpget"),
        "-v2c",
        "-c",
        community,
        "-t",
        "0.5",
        "-r",
        "0",
        "-On",
        f"{host}:{port}",
        SYS_UPTIME_OID,
    ]
    try:
        done = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=max(timeout, 1.0) + 1.0,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return False
    return done.returncode == 0 and SYS_UPTIME_OID in done.stdout.decode(errors="replace")


def start_snmpd(
    run_dir: Path,
    *,
    port: int | None = None,
    community: str = "public",
    v3_user: str = "mon",
    v3_auth: str = "authpass123",
    v3_priv: str = "privpass123",
    sys_name: str = "snmpd-test",
) -> Service:
    """Start net-snmp's snmpd on udp:127.0.0.1:port, serving the machine's real
    MIB-II (including ``lo``), with a v2c read-only community and one SNMPv3
    user with SHA authentication and AES privacy (``rouser ... priv``)."""
    for label, secret in (("v3_auth", v3_auth), ("v3_priv", v3_priv)):
        if len(secret) < 8:
            raise ValueError(f"{label}: net-snmp needs a pass phrase of at least 8 characters")
    return _on_free_port(
        port, "udp", lambda p: _start_snmpd(run_dir, p, community, v3_user, v3_auth, v3_priv, sys_name)
    )


def _start_snmpd(
    run_dir: Path, port: int, community: str, v3_user: str, v3_auth: str, v3_priv: str, sys_name: str
) -> Service:
    sdir = _service_dir(run_dir, "snmpd", port)
    # Not named snmpd.conf: SNMP_PERSISTENT_DIR/snmpd.conf is where snmpd
    # saves its own state (engine boots, users) and it would overwrite ours.
    conf = sdir / "agent.conf"
    conf.write_text(
        f"""# written by wardwatch.simulators.lab
agentAddress udp:{LOOPBACK}:{port}
rocommunity {community} {LOOPBACK}
createUser {v3_user} SHA {v3_auth} AES {v3_priv}
rouser {v3_user} priv
# Otherwise every request logs "Connection from UDP: ..." and floods the log.
dontLogTCPWrappersConnects yes
sysName {sys_name}
sysLocation wardwatch test
sysContact wardwatch
"""
    )
    log_path = sdir / "snmpd.log"

    def ready(service: Service, timeout: float) -> bool:
        return _snmpget_ok(service.host, service.port, community, timeout)

    service = Service(
        name="snmpd",
        argv=[find_binary("snmpd"), "-f", "-C", "-c", str(conf), "-Lf", str(log_path)],
        host=LOOPBACK,
        port=port,
        run_dir=sdir,
        log_path=log_path,
        # MIBS="": snmpd serves from compiled-in modules; parsing the installed
        # MIB files only adds ~30 "Cannot adopt OID" lines that bury real errors.
        env={"SNMP_PERSISTENT_DIR": str(sdir), "MIBS": ""},
        ready=ready,
    )
    service.start()
    return service


@dataclass
class SnmpsimAgent:
    """One simulated agent endpoint: the recordings in ``data_dir`` (community =
    a file's path under it without ``.snmprec``) served on host:port/udp."""

    data_dir: Path
    port: int
    host: str = LOOPBACK


@dataclass
class SnmpsimService(Service):
    """One snmpsim-command-responder process serving several endpoints."""

    agents: list[SnmpsimAgent] = field(default_factory=list)


def start_snmpsim(
    run_dir: Path,
    *,
    agents: list[SnmpsimAgent],
    probe_community: str = "public",
) -> Service:
    """Start ONE snmpsim 1.2 process with an SNMP engine per agent.

    snmpsim parses its SNMP options in blocks: each ``--v3-engine-id`` starts a
    new engine, and the ``--data-dir`` and ``--agent-udpv4-endpoint`` options up
    to the next one belong to it, so every endpoint serves its own data dir.
    Ready once every endpoint answers a GET of sysUpTime.0 with
    ``probe_community``, so each data dir needs a ``<probe_community>.snmprec``
    with that OID.
    """
    if not agents:
        raise ValueError("start_snmpsim needs at least one agent")
    endpoints = [(a.host, a.port) for a in agents]
    if len(set(endpoints)) != len(endpoints):
        raise ValueError(f"duplicate snmpsim endpoints: {endpoints}")
    sdir = _service_dir(run_dir, "snmpsim", agents[0].port)
    cache = sdir / "cache"
    argv = [
        find_binary("snmpsim-command-responder"),
        "--log-level=error",
        f"--cache-dir={cache}",
    ]
    for agent in agents:
        data_dir = Path(agent.data_dir).resolve()
        # snmpsim splits "--opt=value" on every "=", keeping only the first part
        # of the value: a path with "=" in it would be silently truncated.
        if "=" in str(data_dir):
            raise ValueError(f"snmpsim cannot take a data dir with '=' in it: {data_dir}")
        argv += [
            "--v3-engine-id=auto",
            f"--data-dir={data_dir}",
            f"--agent-udpv4-endpoint={agent.host}:{agent.port}",
        ]

    def ready(service: Service, timeout: float) -> bool:
        return all(_snmpget_ok(agent.host, agent.port, probe_community, timeout) for agent in agents)

    service = SnmpsimService(
        name="snmpsim",
        argv=argv,
        host=agents[0].host,
        port=agents[0].port,
        run_dir=sdir,
        log_path=sdir / "snmpsim.log",
        env={"SNMPSIM_ALLOW_ROOT": "true"},
        ready=ready,
        agents=list(agents),
        # snmpsim indexes every data dir before its first answer: the demo's 13 take half a
        # minute on a loaded 2-core box
        ready_timeout=max(20.0, 20.0 + 2.0 * len(agents)),
    )
    service.start()
    return service


def script(name: str, args: list[str], *, run_dir: Path, label: str | None = None) -> Service:
    """One of wardwatch's own commands (``wardwatch-agent``, ...) as a Service, not yet
    started: stopped and killed by PID like the others, logging to ``run_dir/LABEL.log``.
    It has no readiness check; callers wait for what they need."""
    label = label or name
    run_dir.mkdir(parents=True, exist_ok=True)
    return Service(
        name=label,
        argv=[find_binary(name), *args],
        host=LOOPBACK,
        port=0,
        run_dir=run_dir,
        log_path=run_dir / f"{label.replace(' ', '-')}.log",
    )
