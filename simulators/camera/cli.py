"""``wardwatch-sim cameras``: serve a fleet of simulated ONVIF cameras until Ctrl-C or SIGTERM.

Prints one line of JSON when every camera listens: the control URL and, per camera, its id,
brand, host, ONVIF port, RTSP port and credentials, so that a test or the demo can build
agent configs from it (``--output FILE`` writes the same document, as YAML if FILE ends in
``.yaml``/``.yml``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from wardwatch.simulators.camera.brands import BRANDS
from wardwatch.simulators.camera.fleet import DEFAULT_PASSWORD, DEFAULT_USER, CameraFleet


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--count", type=int, default=1, help="number of cameras (default 1)")
    p.add_argument("--host", default="127.0.0.1",
                   help="listen address; may contain {n} (1-based camera number), e.g. 127.0.1.{n}")
    p.add_argument("--base-port", type=int, default=0,
                   help="camera i listens on BASE+2i (ONVIF/HTTP) and BASE+2i+1 (RTSP); 0 = ephemeral ports")
    p.add_argument("--brand", default="mix", choices=[*BRANDS, "mix"], help="brand profile; mix cycles brands")
    p.add_argument("--id-prefix", default="cam", help="camera ids are PREFIX-001, PREFIX-002, ...")
    p.add_argument("--user", default=DEFAULT_USER, help=f"ONVIF/HTTP/RTSP user (default {DEFAULT_USER})")
    p.add_argument("--password", default=DEFAULT_PASSWORD, help="password for --user")
    p.add_argument("--control-host", default="127.0.0.1")
    p.add_argument("--control-port", type=int, default=0, help="control endpoint port; 0 = ephemeral")
    p.add_argument("--faults", default="{}",
                   help='initial knobs as JSON: {"cam-002": {"clock_skew": 37}, "*": {"slow": 0.2}}')
    p.add_argument("--discovery-interface", default=None,
                   help="answer WS-Discovery probes joined on this IPv4 address (off by default)")
    p.add_argument("--output", help="also write the listing to this file (JSON, or YAML for .yaml/.yml)")


async def _serve(args: argparse.Namespace, faults: dict[str, Any]) -> int:
    fleet = CameraFleet(count=args.count, host=args.host, base_port=args.base_port, brand=args.brand,
                        username=args.user, password=args.password, id_prefix=args.id_prefix, faults=faults,
                        control_host=args.control_host, control_port=args.control_port,
                        discovery_interface=args.discovery_interface)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with fleet:
        doc = {"control_url": fleet.control_url, "cameras": fleet.listing()}
        if args.output:
            out = Path(args.output)
            text = yaml.safe_dump(doc, sort_keys=False) if out.suffix in (".yaml", ".yml") else json.dumps(doc)
            await asyncio.to_thread(out.write_text, text)
        print(json.dumps(doc), flush=True)
        await stop.wait()
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        faults = json.loads(args.faults)
        if not isinstance(faults, dict) or not all(isinstance(v, dict) for v in faults.values()):
            raise ValueError("an object mapping camera ids (or *) to objects of knobs")
    except ValueError as exc:
        print(f"cameras: --faults: {exc}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(_serve(args, faults))
    except ValueError as exc:
        print(f"cameras: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cameras: cannot listen: {exc}", file=sys.stderr)
        return 1
    finally:
        with contextlib.suppress(ValueError):
            sys.stdout.flush()
