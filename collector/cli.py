"""``wardwatch-collector``: the collector's command line.

    wardwatch-collector run -c FILE [--log-level LEVEL]
    wardwatch-collector report uptime -c FILE --from TIME --to TIME [--ward W] [--step S] [--format table|csv|json]

Exit status: 0 after a clean stop (SIGINT/SIGTERM), 1 when it could not start,
2 when the config (or the command line) is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from importlib.metadata import version
from pathlib import Path

from wardwatch.collector import app, report
from wardwatch.collector.config import default_client_id, load_config
from wardwatch.collector.influx import InfluxError
from wardwatch.config import ConfigError

PROG = "wardwatch-collector"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


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
    parser = argparse.ArgumentParser(prog=PROG, parents=[common], description="The wardwatch collector.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wardwatch')}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", parents=[common], help="run the collector until SIGINT/SIGTERM")
    run.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    rep = sub.add_parser("report", parents=[common], help="reports from InfluxDB")
    rep.add_argument("kind", choices=("uptime",), help="uptime: up, down and unknown time per device")
    rep.add_argument("-c", "--config", required=True, type=Path, metavar="FILE", help="collector config (YAML)")
    rep.add_argument("--from", dest="start", required=True, metavar="TIME", help="ISO 8601; UTC if no offset")
    rep.add_argument("--to", dest="end", required=True, metavar="TIME", help="ISO 8601; UTC if no offset")
    rep.add_argument("--ward", help="only this ward")
    rep.add_argument(
        "--step",
        type=int,
        default=None,
        metavar="SECONDS",
        help="cut every device's period into steps of this many seconds (default: each device's own poll "
        "interval, the median spacing of its readings in the period; 60 for a device with one reading)",
    )
    rep.add_argument("--format", choices=report.FORMATS, default="table")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), format=LOG_FORMAT, stream=sys.stderr)
    if args.command == "run":
        return _run(args.config)
    if args.command == "report":
        return _report(args)
    return 2  # unreachable: argparse requires a known command


def _run(config_path: Path) -> int:
    try:
        cfg = load_config(config_path)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    client_id = cfg.mqtt.client_id or default_client_id(config_path)
    try:
        asyncio.run(app.run(cfg, client_id=client_id))
    except app.StartupError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


def _report(args: argparse.Namespace) -> int:
    try:
        cfg = load_config(args.config)
        start_ms, end_ms = report.parse_time(args.start), report.parse_time(args.end)
        if end_ms <= start_ms or (args.step is not None and args.step < 1):
            raise ValueError("--to must be after --from, and --step at least 1")
    except (ConfigError, ValueError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    try:
        rows = asyncio.run(report.uptime(cfg, start_ms=start_ms, end_ms=end_ms, step_s=args.step, ward=args.ward))
    except (InfluxError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(report.render(rows, args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
