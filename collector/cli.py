"""``wardwatch-collector``: the collector's command line.

    wardwatch-collector run -c FILE [--log-level LEVEL]
    wardwatch-collector alerts -c FILE [--log-level LEVEL]
    wardwatch-collector config -c FILE [--show]
    wardwatch-collector broker-config --inventory FILE --out DIR [--listen HOST:PORT] [--name HOST] [--rotate]
    wardwatch-collector report uptime|coverage|capacity -c FILE --from TIME --to TIME [--ward W ...]
        [--format table|csv|json|html] [--tz ZONE] [--out FILE [--out-dir DIR]]
        [--step S] [--clients-threshold N] [--util-threshold PCT] [--what-if cameras=N,bitrate=KBPS]

Exit status: 0 after a clean stop (SIGINT/SIGTERM) or a report written, 1 when it could not
start (or InfluxDB could not answer a report), 2 when the config (or the command line) is invalid.

Every log line goes through :mod:`wardwatch.redact`: no secret of the loaded config is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from importlib.metadata import version
from pathlib import Path
from typing import Any, Final

from wardwatch import logs, redact
from wardwatch.collector import app
from wardwatch.collector.config import CollectorConfig, default_client_id, load_config
from wardwatch.collector.influx import InfluxError
from wardwatch.collector.reports import formats
from wardwatch.collector.reports.common import make_period, open_influx, ward_clause, zone
from wardwatch.collector.reports.model import Period, Report
from wardwatch.config import ConfigError
from wardwatch.config import show as show_config

PROG = "wardwatch-collector"
LOG_LEVELS = logs.LEVELS
DEFAULT_TZ: Final = "Asia/Ho_Chi_Minh"
REPORT_KINDS: Final = ("uptime", "coverage", "capacity")
# Each report's options (the names its builder reads) and their defaults.
REPORT_OPTIONS: Final[dict[str, dict[str, Any]]] = {
    "uptime": {"step": None},
    "coverage": {},
    "capacity": {"clients_threshold": 30, "util_threshold": 80.0, "what_if": None},
}
SECTION_FIELD: Final = "{section}"


def _parser() -> argparse.ArgumentParser:
    # --log-level is accepted before or after the sub-command; SUPPRESS keeps the
    # sub-parser's default from overwriting a value given before it.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--log-level",
        type=str.upper,
        choices=LOG_LEVELS,
        default=argparse.SUPPRESS,
        help="log threshold (default INFO)",
    )
    common.add_argument(
        "--log-format",
        choices=logs.FORMATS,
        default=argparse.SUPPRESS,
        help="text, journal (no time, syslog priority; auto under systemd) or json (one object a line, for log "
        "shippers); default auto",
    )
    parser = argparse.ArgumentParser(prog=PROG, parents=[common], description="The wardwatch collector.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wardwatch')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the collector until SIGINT/SIGTERM")
    run.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    alerts = sub.add_parser("alerts", parents=[common], help="run the alert engine alone (docs/alerts.md)",
                            description="The alert engine without the readings path: its own subscription to "
                            "alerts.wards, notifications, the alert API. Needs an alerts: section.")
    alerts.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    conf = sub.add_parser("config", parents=[common], help="validate the config; --show prints it in effect",
                          description="Validate the config (exit 0, or 2 naming the key); with --show, print the "
                          "effective config as YAML: defaults filled in, every secret *** with where it came from.")
    conf.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    conf.add_argument("--show", action="store_true", help="print the effective config (secrets ***)")
    rep = sub.add_parser(
        "report",
        parents=[common],
        help="reports from InfluxDB (docs/reports.md)",
        description="A report over a period, from InfluxDB: to stdout, or to --out FILE (docs/reports.md).",
    )
    rep.add_argument("kind", choices=REPORT_KINDS, help="uptime: per device and ward x kind; coverage: Wi-Fi "
                     "and cameras per ward; capacity: Wi-Fi clients, camera uplinks, PoE budgets")  # fmt: skip
    rep.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    rep.add_argument("--from", dest="start", required=True, metavar="TIME",
                     help="ISO 8601, e.g. 2026-11-01T00:00+07:00; local in --tz if no offset")  # fmt: skip
    rep.add_argument("--to", dest="end", required=True, metavar="TIME", help="ISO 8601; local in --tz if no offset")
    rep.add_argument("--ward", action="append", default=[], metavar="WARD",
                     help="only this ward (repeat for several); all wards when absent")  # fmt: skip
    rep.add_argument("--format", choices=formats.FORMATS, default="table",
                     help="table (terminal), csv (UTF-8 with BOM), json, html (one self-contained page)")  # fmt: skip
    rep.add_argument("--tz", metavar="ZONE", help="IANA time zone of local hours (default: the config's timezone, "
                     "Asia/Ho_Chi_Minh)")  # fmt: skip
    rep.add_argument("--out", metavar="FILE", help="write to this file inside --out-dir instead of stdout; with "
                     "--format csv, a name with {section} writes one file per section")  # fmt: skip
    rep.add_argument("--out-dir", type=Path, default=Path("."), metavar="DIR",
                     help="the folder --out writes in (default: the current one); --out cannot leave it")  # fmt: skip
    rep.add_argument(
        "--step",
        type=int,
        default=None,
        metavar="SECONDS",
        help="uptime: cut every device's period into steps of this many seconds (default: each device's own poll "
        "interval, the median spacing of its readings in the period; 60 for a device with one reading)",
    )
    rep.add_argument("--clients-threshold", type=int, default=None, metavar="N",
                     help="capacity: Wi-Fi clients per radio above which an hour is over (default 30)")  # fmt: skip
    rep.add_argument("--util-threshold", type=float, default=None, metavar="PCT",
                     help="capacity: radio utilisation %% above which an hour counts as over (default 80)")  # fmt: skip
    rep.add_argument("--what-if", default=None, metavar="SPEC",
                     help="capacity: e.g. cameras=4,bitrate=4096 with --ward X: can X take 4 more cameras at "
                     "4096 kbps? yes or no, and the binding constraint")  # fmt: skip
    bc = sub.add_parser(
        "broker-config",
        parents=[common],
        help="Mosquitto config, CA and certificates, password file, ACL and credentials (docs/security.md)",
        description="Write DIR/mosquitto.conf (one TLS listener), DIR/tls/ (a private CA, the server certificate), "
        "DIR/passwd, DIR/acl, DIR/credentials/{id}.yaml for every agent and collector of the inventory, "
        "and DIR/wardwatch-mosquitto.service, a systemd unit. "
        "Run again, it keeps the CA and existing passwords; --rotate replaces them. Never prints a password.",
    )
    bc.add_argument("--inventory", required=True, type=Path, metavar="FILE",
                    help="YAML: agents: [{id, ward}], collectors: [{id}]")  # fmt: skip
    bc.add_argument("--out", required=True, type=Path, metavar="DIR", help="the folder to write (created if absent)")
    bc.add_argument("--listen", default="0.0.0.0:8883", metavar="HOST:PORT",
                    help="the TLS listener (default 0.0.0.0:8883)")  # fmt: skip
    bc.add_argument("--name", default=None, metavar="HOST",
                    help="the broker's name as clients write it (credentials' host, certificate SAN); default: "
                    "the listen host, or this machine's host name when listening on all addresses")  # fmt: skip
    bc.add_argument("--user", default="mosquitto", metavar="USER",
                    help="Mosquitto's `user` (who it becomes when started as root; it must read the files, "
                    "which are given to it when run as root); default mosquitto")  # fmt: skip
    bc.add_argument("--rotate", action="store_true", help="a new CA and new passwords for everybody")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.setup(getattr(args, "log_level", "INFO"), getattr(args, "log_format", "auto"))
    redact.install_log_filter()
    if args.command == "config":
        return _config(args)
    if args.command in ("run", "alerts"):
        return _run(args.config, alone=args.command == "alerts")
    if args.command == "report":
        return _report(args)
    if args.command == "broker-config":
        return _broker_config(args)
    return 2  # unreachable: argparse requires a known command


def _config(args: argparse.Namespace) -> int:
    sources: dict[tuple[int | str, ...], str] = {}
    try:
        cfg = load_config(args.config, sources=sources)
        if cfg.alerts is not None:
            from wardwatch.collector.alerts.rules import load_rules

            load_rules(cfg.alerts.rules)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    redact.register_config(cfg)
    if args.show:
        sys.stdout.write(show_config(cfg, sources))
    else:
        print(f"{args.config}: valid")
    return 0


def _run(config_path: Path, *, alone: bool = False) -> int:
    try:
        cfg = load_config(config_path)
        if alone and cfg.alerts is None:
            raise ConfigError("alerts: the section is missing; the alert engine needs it (docs/alerts.md)")
        if cfg.alerts is not None:
            from wardwatch.collector.alerts.rules import load_rules

            load_rules(cfg.alerts.rules)  # a bad rule file is a bad config: exit 2, naming the key
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    redact.register_config(cfg)  # from here on no log line or error shows a secret of it
    client_id = cfg.mqtt.client_id or default_client_id(config_path)
    logs.tag(collector=client_id)
    try:
        if alone:
            from wardwatch.collector.alerts.service import run_alone

            asyncio.run(run_alone(cfg, client_id=client_id))
        else:
            asyncio.run(app.run(cfg, client_id=client_id))
    except app.StartupError as exc:
        print(f"{PROG}: error: {redact.redact(str(exc))}", file=sys.stderr)
        return 1
    return 0


def _broker_config(args: argparse.Namespace) -> int:
    from wardwatch.collector import brokerconfig

    try:
        brokerconfig.parse_listen(args.listen)
        inventory = brokerconfig.load_inventory(args.inventory)
    except (ConfigError, ValueError) as exc:
        print(f"{PROG}: {'' if str(exc).startswith('--') else 'inventory error: '}{exc}", file=sys.stderr)
        return 2
    try:
        result = brokerconfig.generate(inventory, args.out, listen=args.listen, name=args.name,
                                       rotate=args.rotate, user=args.user or None)  # fmt: skip
    except (ConfigError, OSError, subprocess.SubprocessError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    ca = "a new CA" if result.new_ca else "the CA kept"
    print(f"{result.out}: {len(result.users)} users; {ca}; {len(result.new_passwords)} new passwords; "
          f"credentials in {result.out / 'credentials'} (0600). Start: mosquitto -c {result.out / 'mosquitto.conf'}, "
          f"or under systemd {result.out / 'wardwatch-mosquitto.service'} (docs/deploy.md)")
    return 0


def _report(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        tz = zone(args.tz or getattr(cfg, "timezone", DEFAULT_TZ))
        period = make_period(args.start, args.end, tz)
        ward_clause(args.ward)  # checks the ids: a bad one is a bad argument, before any query
        options = _report_options(args)
        target = output_path(args.out_dir, args.out) if args.out else None
        if target is not None and SECTION_FIELD in target.name and args.format != "csv":
            raise ValueError(f"--out {args.out}: {SECTION_FIELD} (one file per section) is for --format csv only")
        build = _builder(args.kind)
    except (ConfigError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    redact.register_config(cfg)
    try:
        result = asyncio.run(_build_report(build, cfg, period=period, wards=args.ward, options=options))
    except InfluxError as exc:
        print(f"{PROG}: error: {redact.redact(str(exc))}", file=sys.stderr)
        return 1
    except ValueError as exc:  # what the builder found wrong with the arguments (e.g. --what-if)
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if target is not None and SECTION_FIELD in target.name:
        files = formats.csv_sections(result)
    else:
        files = {"": formats.render(result, args.format)}
    if target is None:
        sys.stdout.buffer.write(files[""])
        sys.stdout.flush()
        return 0
    try:
        for key, body in files.items():
            write_file(output_path(args.out_dir, args.out.replace(SECTION_FIELD, key)), body)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: cannot write {args.out}: {exc}", file=sys.stderr)
        return 1
    return 0


Builder = Callable[..., Awaitable[Report]]


def _builder(kind: str) -> Builder:
    """``wardwatch.collector.reports.<kind>.build`` (common.py gives its signature)."""
    module = importlib.import_module(f"wardwatch.collector.reports.{kind}")
    build: Builder = module.build
    return build


async def _build_report(build: Builder, cfg: CollectorConfig, *, period: Period, wards: list[str],
                        options: dict[str, Any]) -> Report:  # fmt: skip
    async with open_influx(cfg) as influx:
        return await build(influx, period=period, wards=wards, cfg=cfg, options=options)


def _report_options(args: argparse.Namespace) -> dict[str, Any]:
    """The options of ``args.kind`` (docs/reports.md); another report's option is an error."""
    given = {
        "step": args.step,
        "clients_threshold": args.clients_threshold,
        "util_threshold": args.util_threshold,
        "what_if": args.what_if,
    }
    own = REPORT_OPTIONS[args.kind]
    for key, value in given.items():
        if value is not None and key not in own:
            raise ValueError(f"--{key.replace('_', '-')} is not an option of report {args.kind}")
    if args.step is not None and args.step < 1:
        raise ValueError("--step must be at least 1")
    if args.clients_threshold is not None and args.clients_threshold < 1:
        raise ValueError("--clients-threshold must be at least 1")
    if args.util_threshold is not None and not 0 < args.util_threshold <= 100:
        raise ValueError("--util-threshold must be a percentage above 0 and at most 100")
    return {key: default if given[key] is None else given[key] for key, default in own.items()}


def output_path(out_dir: Path, name: str) -> Path:
    """Where ``--out NAME`` writes: inside ``out_dir``, whatever NAME says. Refused: a NAME
    with a ``..`` part, an absolute NAME outside ``out_dir``, and a NAME that reaches outside
    through a symlink (a linked folder or an existing link as the file itself)."""
    if not name or name.endswith(("/", "\\")):
        raise ValueError(f"--out {name!r} is not a file name")
    candidate = Path(name)
    if ".." in candidate.parts:
        raise ValueError(f"--out {name}: '..' may not appear in the file name")
    root = out_dir.resolve()
    if not root.is_dir():
        raise ValueError(f"--out-dir {out_dir} is not a folder")
    full = candidate if candidate.is_absolute() else root / candidate
    resolved = full.resolve()  # follows every symlink on the way, including the file's own
    if not resolved.is_relative_to(root) or resolved == root:
        raise ValueError(f"--out {name} is outside the output folder {root} (--out-dir)")
    return resolved


def write_file(path: Path, body: bytes) -> None:
    """Write ``body`` whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_bytes(body)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
