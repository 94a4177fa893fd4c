"""``wardwatch-agent``: run the agent, or check a config against the devices once.

Exit codes: 0 all good; 1 some devices failed (``check``); 2 the config is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from importlib.metadata import version
from pathlib import Path

from wardwatch.agent import check as check_cmd
from wardwatch.agent.app import PROFILE_PATH_ENV, Agent, Poller
from wardwatch.agent.config import AgentConfig, load_config
from wardwatch.agent.outbox import OutboxError
from wardwatch.agent.profiles import ProfileError, load_catalog
from wardwatch.config import ConfigError

PROG = "wardwatch-agent"
LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="wardwatch agent: polls a ward's devices")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wardwatch')}")
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run the agent"), ("check", "poll every device once and print a table")):
        p = sub.add_parser(name, help=text)
        p.add_argument("-c", "--config", required=True, type=Path, help="agent config (YAML)")
        p.add_argument("--log-level", default=argparse.SUPPRESS,
                       choices=["DEBUG", "INFO", "WARNING", "ERROR"])
        p.add_argument("--profiles", action="append", type=Path, default=[], metavar="DIR",
                       help=f"extra vendor profile directory (repeatable; also ${PROFILE_PATH_ENV})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    logging.getLogger("pysnmp").setLevel(logging.WARNING)

    dirs = [*args.profiles, *(Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(":") if p)]
    try:
        cfg = load_config(args.config)
        check_profiles(cfg, dirs)
    except (ConfigError, ProfileError) as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    os.environ[PROFILE_PATH_ENV] = ":".join(str(d) for d in dirs)  # the Agent's Poller reads it
    if args.command == "check":
        return asyncio.run(check(cfg, dirs))
    return asyncio.run(run(cfg))


def check_profiles(cfg: AgentConfig, dirs: list[Path]) -> None:
    """Every profile loads, and every device's ``profile`` names one."""
    catalog = load_catalog(dirs)
    for i, dev in enumerate(cfg.devices):
        if dev.profile and dev.profile not in catalog.profiles:
            known = ", ".join(sorted(catalog.profiles))
            raise ConfigError(f"devices[{i}].profile: unknown profile '{dev.profile}' (known: {known})")


async def check(cfg: AgentConfig, dirs: list[Path]) -> int:
    poller = Poller(cfg, profile_dirs=dirs)
    try:
        return await check_cmd.check(cfg, poller)
    finally:
        poller.close()


async def run(cfg: AgentConfig) -> int:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, task.cancel)
    try:
        await Agent(cfg).run()
    except asyncio.CancelledError:
        logging.getLogger(__name__).info("agent %s: stopped", cfg.agent.id)
        return 0
    except OutboxError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
