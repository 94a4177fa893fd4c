"""What redaction costs the agent: ``safe_readings`` (the last guard before the outbox, which
now also looks for registered secrets and URI logins in every text field and tag) over a
poll's worth of switch readings, with no secret registered (the baseline) and with a ward's
config's secrets registered (community, v3 keys, camera and MQTT passwords: their variants).

    .venv/bin/python bench/redact_readings.py [--readings 1000] [--runs 15]
"""

from __future__ import annotations

import argparse
import statistics
import time

from wardwatch import redact
from wardwatch.agent.core.text import safe_readings
from wardwatch.wire import Reading


def readings(n: int) -> list[Reading]:
    return [Reading(device="sw-core", kind="switch", measurement="if_traffic", time_ms=1_700_000_000_000 + i,
                    fields={"in_octets": i * 1000, "out_octets": i * 900, "oper_status": 1, "speed_mbps": 1000},
                    tags={"if_name": f"Gi0/{i % 48}", "if_alias": "to cam-03, PoE", "vendor": "cisco"})
            for i in range(n)]  # fmt: skip


def once_ms(batch: list[Reading]) -> float:
    start = time.perf_counter()
    for _ in range(10):
        safe_readings(batch)
    return (time.perf_counter() - start) / 10 * 1000


def register_ward() -> None:
    redact.register(["ward7-community"])
    redact.register(["v3-auth-key-1", "v3-priv-key-1"])
    redact.register(["camera-pass-1"], user="admin")
    redact.register(["mqtt-pass-0123456789abcdef"], user="cam-pho-1")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--readings", type=int, default=1000)
    p.add_argument("--runs", type=int, default=15)
    args = p.parse_args()
    batch = readings(args.readings)
    base_runs, secret_runs = [], []
    for _ in range(args.runs):  # interleaved, so that both see the same machine
        redact.clear()
        base_runs.append(once_ms(batch))
        register_ward()
        secret_runs.append(once_ms(batch))
    base, with_secrets = statistics.median(base_runs), statistics.median(secret_runs)
    per = (with_secrets - base) * 1000 / args.readings
    print(f"{args.readings} readings: baseline {base:.2f} ms, with secrets {with_secrets:.2f} ms "
          f"(ratio {with_secrets / base:.2f}, +{per:.2f} us a reading), medians of {args.runs}")


if __name__ == "__main__":
    main()
