"""``wardwatch-agent``: run the agent, or check a config against the devices once.

Exit codes: 0 all good; 1 some devices failed (``check``); 2 the config is invalid.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from importlib.metadata import version
from pathlib import Path

from wardwatch.agent.app import Agent, Poller, PollResult
from wardwatch.agent.config import AgentConfig, load_config
from wardwatch.agent.outbox import OutboxError
from wardwatch.agent.switch import SwitchState
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
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT)
    logging.getLogger("pysnmp").setLevel(logging.WARNING)

    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    if args.command == "check":
        return asyncio.run(check(cfg))
    return asyncio.run(run(cfg))


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


async def check(cfg: AgentConfig) -> int:
    poller = Poller(cfg)
    try:
        results = await asyncio.gather(
            *(poller.poll(poller.session(dev), SwitchState()) for dev in cfg.devices)
        )
    finally:
        poller.close()
    print(format_table(results))
    failed = sum(not r.ok for r in results)
    print(f"\n{len(results) - failed} of {len(results)} devices answered")
    return 1 if failed else 0


def format_table(results: list[PollResult]) -> str:
    header = ("DEVICE", "KIND", "ADDRESS", "SNMP", "STATUS", "SYSNAME", "IFS", "POLL_MS", "DETAIL")
    rows = [header]
    for r in results:
        status = r.readings[0].fields
        rows.append((
            r.device.id, r.device.kind, f"{r.device.host}:{r.device.port or 161}", f"v{r.version}",
            "up" if r.ok else r.reason, r.state.sys_name or "-", str(r.state.interfaces) if r.ok else "-",
            f"{status.get('poll_ms', 0):.0f}", r.detail,
        ))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header) - 1)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths, strict=True)) + "  " + row[-1]
        for row in rows
    ).rstrip()


if __name__ == "__main__":
    sys.exit(main())
