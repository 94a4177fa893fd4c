"""``wardwatch-agent``: run the agent, check a config against the devices once, discover devices,
or show the config in effect (``config --show``, secrets as ``***``).

Every log line goes through :mod:`wardwatch.redact`: no secret of the loaded config is printed.

Exit codes: 0 all good; 1 some devices failed (``check``) or none found (``discover``);
2 the config or an argument is invalid.
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

from wardwatch import logs, redact
from wardwatch.agent.core import check as check_cmd
from wardwatch.agent.core import discover
from wardwatch.agent.core.app import PROFILE_PATH_ENV, Agent
from wardwatch.agent.core.config import AgentConfig, load_config
from wardwatch.agent.core.outbox import OutboxError
from wardwatch.agent.snmp.profiles import ProfileError, load_catalog
from wardwatch.config import ConfigError
from wardwatch.config import show as show_config

PROG = "wardwatch-agent"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="wardwatch agent: polls a ward's devices")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wardwatch')}")
    parser.add_argument("--log-level", default="INFO", choices=logs.LEVELS)
    parser.add_argument("--log-format", default="auto", choices=logs.FORMATS,
                        help="text, journal (no time, syslog priority; auto under systemd) or json (one object "
                        "a line, for log shippers); default auto")
    sub = parser.add_subparsers(dest="command", required=True)
    commands = (("run", "run the agent"), ("check", "poll every device once and print a table"),
                ("discover", "sweep CIDRs for SNMP devices and/or find ONVIF cameras; write device entries (YAML)"),
                ("config", "validate the config; --show prints it in effect (defaults filled in, secrets ***)"))
    for name, text in commands:
        p = sub.add_parser(name, help=text)
        p.add_argument("-c", "--config", required=True, type=Path, help="agent config (YAML)")
        p.add_argument("--log-level", default=argparse.SUPPRESS, choices=logs.LEVELS)
        p.add_argument("--log-format", default=argparse.SUPPRESS, choices=logs.FORMATS)
        p.add_argument("--profiles", action="append", type=Path, default=[], metavar="DIR",
                       help=f"extra vendor profile directory (repeatable; also ${PROFILE_PATH_ENV})")
        if name == "config":
            p.add_argument("--show", action="store_true",
                           help="print the effective config as YAML, every secret *** with where it came from")
        if name == "discover":
            p.add_argument("--cidr", action="append", default=[], help="network to sweep for SNMP (repeatable)")
            p.add_argument("--onvif", action="store_true", help="find ONVIF cameras by WS-Discovery (multicast)")
            p.add_argument("--onvif-wait", type=float, default=3.0, help="seconds to collect answers (default 3)")
            p.add_argument("--onvif-interface", metavar="ADDR", help="IPv4 address to send the probe from")
            p.add_argument("--auth", action="append", required=True, help="auth profile to try (repeatable, in order)")
            p.add_argument("--port", type=int, default=161, help="SNMP port (default 161)")
            p.add_argument("--concurrency", type=int, default=64, help="addresses in flight at once (default 64)")
            p.add_argument("--timeout", type=float, default=1.0, help="per-request timeout in seconds (default 1)")
            p.add_argument("--retries", type=int, default=0, help="retries after a timeout (default 0)")
            p.add_argument("-o", "--output", default="-", help="YAML file to write, or - for stdout (default)")
    args = parser.parse_args(argv)
    logs.setup(args.log_level, args.log_format)
    logging.getLogger("pysnmp").setLevel(logging.WARNING)
    redact.install_log_filter()

    dirs = [*args.profiles, *(Path(p) for p in os.environ.get(PROFILE_PATH_ENV, "").split(":") if p)]
    sources: dict[tuple[int | str, ...], str] = {}
    try:
        cfg = load_config(args.config, sources=sources)
        check_profiles(cfg, dirs)
    except (ConfigError, ProfileError) as exc:
        print(f"{PROG}: config error: {exc}", file=sys.stderr)
        return 2
    redact.register_config(cfg)  # from here on no log line, table or error shows a secret of it
    logs.tag(agent=cfg.agent.id, ward=cfg.agent.ward)
    os.environ[PROFILE_PATH_ENV] = ":".join(str(d) for d in dirs)  # the SNMP poller reads it
    if args.command == "config":
        print(show_config(cfg, sources) if args.show else f"{args.config}: valid", end="" if args.show else "\n")
        return 0
    if args.command == "check":
        return asyncio.run(check(cfg, dirs, args.config))
    if args.command == "discover":
        return run_discover(cfg, args, dirs)
    return asyncio.run(run(cfg))


def run_discover(cfg: AgentConfig, args: argparse.Namespace, dirs: list[Path]) -> int:
    problem = discover.check_args(cfg, cidrs=args.cidr, auths=args.auth, onvif=args.onvif,
                                  onvif_wait=args.onvif_wait, onvif_interface=args.onvif_interface,
                                  source=str(args.config))
    if problem is None and not (1 <= args.concurrency <= 1024 and 0 < args.timeout <= 60 and 0 <= args.retries <= 5):
        problem = "--concurrency 1..1024, --timeout 0..60 s, --retries 0..5"
    if problem is not None:
        print(f"{PROG}: {problem}", file=sys.stderr)
        return 2
    catalog = load_catalog(dirs) if args.cidr else None
    text, count = asyncio.run(discover.discover(
        cfg, cidrs=args.cidr, auths=args.auth, catalog=catalog, port=args.port, concurrency=args.concurrency,
        request_timeout=args.timeout, retries=args.retries, onvif=args.onvif, onvif_wait=args.onvif_wait,
        onvif_interface=args.onvif_interface))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    print(f"{count} devices found", file=sys.stderr)
    return 0 if count else 1


def check_profiles(cfg: AgentConfig, dirs: list[Path]) -> None:
    """Every profile loads, and every device's ``profile`` names one."""
    catalog = load_catalog(dirs)
    for i, dev in enumerate(cfg.devices):
        if dev.profile and dev.profile not in catalog.profiles:
            known = ", ".join(sorted(catalog.profiles))
            raise ConfigError(f"devices[{i}].profile: unknown profile '{dev.profile}' (known: {known})")


async def check(cfg: AgentConfig, dirs: list[Path], source: Path | None = None) -> int:
    return await check_cmd.check(cfg, profile_dirs=dirs, source=source)


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
        print(f"{PROG}: {redact.redact(str(exc))}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
