"""``wardwatch-collector``: the collector's command line.

    wardwatch-collector run -c FILE [--log-level LEVEL]

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

from wardwatch.collector import app
from wardwatch.collector.config import default_client_id, load_config
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=getattr(args, "log_level", "INFO"), format=LOG_FORMAT, stream=sys.stderr)
    if args.command == "run":
        return _run(args.config)
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


if __name__ == "__main__":
    sys.exit(main())
