"""``wardwatch-sim``: simulated devices and the demo fleet.

wardwatch-sim snmprec --ports 24 --name sw-core --seed 1 -o sw-core.snmprec
wardwatch-sim serve --data-dir DIR --port 16100 [--data-dir DIR2 --port 16101 ...]
wardwatch-sim aps --port 16200 [--device cisco_wlc:wlc --device unifi:ap-1 ...] [--aps 3] [--seed 0]
wardwatch-sim demo [--fast] [--scenario configs/demo-scenario.yaml] [--run-dir run/demo] [--duration 0]
wardwatch-sim cameras --count 200 --brand mix [--faults JSON] [--control-port 0]
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import tempfile
import threading
import time
from importlib.metadata import version
from pathlib import Path

from wardwatch.simulators import demo
from wardwatch.simulators.aps import VENDORS, ApSpec, render_ap, write_many
from wardwatch.simulators.camera import cli as camera_cli
from wardwatch.simulators.lab import ServiceError, SnmpsimAgent, start_snmpsim
from wardwatch.simulators.snmprec import SwitchSpec, render


def _spec(args: argparse.Namespace) -> SwitchSpec:
    return SwitchSpec(name=args.name, ports=args.ports, seed=args.seed, location=args.location)


def _cmd_snmprec(args: argparse.Namespace) -> int:
    text = render(_spec(args))
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text)
    return 0


def _cmd_rates(args: argparse.Namespace) -> int:
    rows = [f"{'ifName':<10} {'role':<8} {'oper':<5} {'in_bps':>12} {'out_bps':>12} {'speed_mbps':>10}"]
    for p in _spec(args).port_specs():
        oper = "up" if p.oper_up else "down"
        rows.append(f"{p.name:<10} {p.role:<8} {oper:<5} {p.in_bps:>12} {p.out_bps:>12} {p.speed_mbps:>10}")
    sys.stdout.write("\n".join(rows) + "\n")
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    if len(args.data_dir) != len(args.port):
        print("serve: give one --port per --data-dir, in the same order", file=sys.stderr)
        return 2
    pairs = zip(args.data_dir, args.port, strict=True)
    agents = [SnmpsimAgent(data_dir=Path(d), port=p, host=args.host) for d, p in pairs]
    for agent in agents:
        if not any(Path(agent.data_dir).rglob("*.snmprec")):
            print(f"serve: no *.snmprec under {agent.data_dir}", file=sys.stderr)
            return 2
    return _serve_until_stopped(agents, args.run_dir)


def _cmd_aps(args: argparse.Namespace) -> int:
    devices = args.device or [f"{v}:{v.replace('_', '-')}" for v in VENDORS]
    specs: dict[str, ApSpec] = {}
    for item in devices:
        vendor, _, name = item.partition(":")
        name = name or vendor.replace("_", "-")
        if args.aps < 1:
            print("aps: --aps must be at least 1", file=sys.stderr)
            return 2
        if vendor not in VENDORS or name in specs or name == "public" or "/" in name:
            print(f"aps: --device {item!r}: want VENDOR[:NAME], VENDOR one of {', '.join(VENDORS)}, "
                  "NAME unique and not 'public'", file=sys.stderr)
            return 2
        specs[name] = ApSpec(vendor=vendor, name=name, seed=args.seed, aps=args.aps)
    data_dir = Path(args.data_dir) if args.data_dir else Path(tempfile.mkdtemp(prefix="wardwatch-aps-"))
    write_many(data_dir, {name: render_ap(spec) for name, spec in specs.items()})
    now = time.time()
    print(f"{'community':<16} {'vendor':<14} {'APs':>3} {'radios':>6} {'clients now':>11}")
    for name, spec in specs.items():
        aps = len(spec.ap_names()) if spec.controller else 1
        clients = sum(r.clients_at(now) for r in spec.radios())
        print(f"{name:<16} {spec.vendor:<14} {aps:>3} {len(spec.radios()):>6} {clients:>11}")
    first = next(iter(specs))
    print(f"e.g. snmpwalk -v2c -c {first} {args.host}:{args.port} 1.3.6.1.2.1.1", flush=True)
    return _serve_until_stopped([SnmpsimAgent(data_dir=data_dir, port=args.port, host=args.host)], args.run_dir)


def _serve_until_stopped(agents: list[SnmpsimAgent], run_dir_arg: str | None) -> int:
    run_dir = Path(run_dir_arg) if run_dir_arg else Path(tempfile.mkdtemp(prefix="wardwatch-sim-"))
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        service = start_snmpsim(run_dir, agents=agents)
    except ServiceError as exc:
        print(exc, file=sys.stderr)
        return 1
    try:
        for agent in agents:
            print(f"serving {agent.data_dir} on udp:{agent.host}:{agent.port}")
        print(f"snmpsim pid {service.pid}, log {service.log_path}; Ctrl-C to stop", flush=True)
        while not stop.wait(0.5):
            if not service.running():
                print(f"snmpsim exited unexpectedly:\n{service.log_tail()}", file=sys.stderr)
                return 1
    finally:
        service.stop()
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wardwatch-sim", description="wardwatch simulators and demo fleet")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version('wardwatch')}")
    parser.add_argument("--log-level", default="INFO", type=str.upper, choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    sub = parser.add_subparsers(dest="command", required=True)

    def switch_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--ports", type=int, choices=[24, 48], default=24)
        p.add_argument("--name", default="sw-core", help="sysName")
        p.add_argument("--seed", type=int, default=0, help="picks port roles and rates")
        p.add_argument("--location", default="", help="sysLocation")

    p = sub.add_parser("snmprec", help="write the .snmprec recording of one simulated switch")
    switch_options(p)
    p.add_argument("-o", "--output", required=True, help="file to write, or - for stdout")
    p.set_defaults(func=_cmd_snmprec)

    p = sub.add_parser("rates", help="print the per-port rates a simulated switch serves")
    switch_options(p)
    p.set_defaults(func=_cmd_rates)

    p = sub.add_parser("serve", help="serve recordings with snmpsim until Ctrl-C")
    p.add_argument(
        "--data-dir", action="append", required=True, help="snmpsim data dir (repeatable, pairs with --port)"
    )
    p.add_argument("--port", action="append", type=int, required=True, help="UDP port (repeatable)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--run-dir", help="where snmpsim keeps its log and index cache (default: a temp dir)")
    p.set_defaults(func=_cmd_serve)

    p = sub.add_parser("aps", help="serve Wi-Fi AP and controller recordings with snmpsim until Ctrl-C")
    p.add_argument("--device", action="append", metavar="VENDOR[:NAME]",
                   help=f"one AP or controller, community NAME (repeatable; default one of each: {', '.join(VENDORS)})")
    p.add_argument("--aps", type=int, default=3, help="APs behind each controller (default 3)")
    p.add_argument("--seed", type=int, default=0, help="picks channels, utilisation and client curves")
    p.add_argument("--port", type=int, required=True, help="UDP port serving every device")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--data-dir", help="where to write the recordings (default: a temp dir)")
    p.add_argument("--run-dir", help="where snmpsim keeps its log and index cache (default: a temp dir)")
    p.set_defaults(func=_cmd_aps)

    p = sub.add_parser("demo", help="run the Hội An fleet end to end, with its scenario of faults, until Ctrl-C")
    demo.add_arguments(p)
    p.set_defaults(func=demo.run)

    p = sub.add_parser("cameras", help="serve simulated ONVIF cameras (SOAP, snapshot, RTSP) until Ctrl-C")
    camera_cli.add_arguments(p)
    p.set_defaults(func=camera_cli.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
