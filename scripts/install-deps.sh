#!/usr/bin/env bash
# Install what wardwatch's demo and tests need on a fresh Debian 12 or 13 machine:
# Debian's mosquitto, influxdb (1.6.x, v1 API), snmpd and snmp, then a venv with the
# project and its extras (snmpsim comes from PyPI: Debian's snmpsim is 0.4, too old).
# Safe to run again: it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
need_pkgs=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || need_pkgs+=(mosquitto mosquitto-clients)
command -v influxd >/dev/null 2>&1 || need_pkgs+=(influxdb)
command -v snmpd >/dev/null 2>&1 || [ -x /usr/sbin/snmpd ] || need_pkgs+=(snmpd)
command -v snmpget >/dev/null 2>&1 || need_pkgs+=(snmp)
# The deployment tests verify the units of deploy/systemd/ with systemd-analyze (tests/test_deploy*.py);
# on a machine where systemd is not PID 1 it still verifies.
command -v systemd-analyze >/dev/null 2>&1 || need_pkgs+=(systemd)
# The WS-Discovery tests make their own network namespaces with `ip netns`.
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2)
# The HTML report's browser test (tests/test_report_html.py) drives Debian's chromium
# through Playwright for Python (never `playwright install`: it downloads its own browser).
# Vietnamese diacritics need real fonts: with none the page is blank, and DejaVu alone
# puts the marks of monospace text beside their letters; Noto renders them right.
[ -x /usr/bin/chromium ] || need_pkgs+=(chromium)
[ -d /usr/share/fonts/truetype/noto ] || need_pkgs+=(fonts-noto-core)
[ -d /usr/share/fonts/truetype/dejavu ] || need_pkgs+=(fonts-dejavu-core)
# The dashboard's monospace text (issue 11 asks for both DejaVu and Noto Mono).
[ -f /usr/share/fonts/truetype/noto/NotoSansMono-Regular.ttf ] || need_pkgs+=(fonts-noto-mono)
# The influx api v2 writer's tests (and the collector throughput bench) write to
# VictoriaMetrics, which speaks /api/v2/write and InfluxDB line protocol.
command -v victoria-metrics >/dev/null 2>&1 || [ -x /usr/bin/victoria-metrics ] || need_pkgs+=(victoria-metrics)
# `make bench` also wants Prometheus' snmp_exporter as a baseline (bench/snmp_poll.py).
if [ "${WITH_BENCH:-0}" = 1 ]; then
    command -v prometheus-snmp-exporter >/dev/null 2>&1 || need_pkgs+=(prometheus-snmp-exporter)
fi

if [ ${#need_pkgs[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "install-deps: need root to apt-get install ${need_pkgs[*]}" >&2
        exit 1
    fi
    echo "install-deps: Debian $(cat /etc/debian_version): installing ${need_pkgs[*]}"
    # Keep the packages from starting system services on their default ports: our
    # scripts start every service themselves, on free loopback ports.
    added_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    trap '[ "$added_policy" = 1 ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
fi
/usr/bin/chromium --version >/dev/null 2>&1 \
    || { echo "install-deps: /usr/bin/chromium does not run (the HTML report test needs it)" >&2; exit 1; }
# The `influx` CLI is only for looking at the data by hand (docs/demo.md); nothing
# depends on it, so a release without the package gets a warning, not a failure.
if ! command -v influx >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    if apt-cache show influxdb-client >/dev/null 2>&1; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends influxdb-client >/dev/null
    else
        echo "install-deps: warning: Debian $(cat /etc/debian_version) has no influxdb-client package;" \
             "the influx CLI of docs/demo.md is not available (wardwatch does not need it)" >&2
    fi
fi

if [ ! -x "$VENV/bin/python" ]; then
    echo "install-deps: creating $VENV"
    "$PY" -m venv "$VENV"
fi
extras=test
stamp="$VENV/.wardwatch-installed"
# `make bench` adds the bench extra (py-spy); its own stamp, so a later plain run does not reinstall.
if [ "${WITH_BENCH:-0}" = 1 ]; then
    extras=test,bench
    stamp="$VENV/.wardwatch-installed-bench"
fi
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "install-deps: installing wardwatch[$extras] into $VENV"
    log="$VENV/pip-install.log"
    { "$VENV/bin/python" -m pip install --disable-pip-version-check -U pip setuptools wheel \
        && "$VENV/bin/python" -m pip install --disable-pip-version-check -e ".[$extras]"; } > "$log" 2>&1 \
        || { tail -30 "$log" >&2; echo "install-deps: pip failed, see $log" >&2; exit 1; }
    "$VENV/bin/python" -c 'import wardwatch.agent, pysnmp, paho.mqtt, aiohttp, msgspec, snmpsim, xdist, playwright' \
        || { echo "install-deps: the venv is incomplete" >&2; exit 1; }
    touch "$stamp"
fi

# The packaging tests (tests/test_wheel.py) install wardwatch from wheels into fresh venvs with
# no network (pip --no-index, in a network namespace): they need every third-party wheel of
# the agent and the collector at hand. scripts/wheelhouse.sh fetches them here, once per
# pyproject.toml, and builds wardwatch's wheel and sdist on the way.
house="$VENV/wheelhouse"
if [ ! -f "$house/.stamp" ] || [ pyproject.toml -nt "$house/.stamp" ]; then
    echo "install-deps: writing the agent and collector wheelhouse into $house"
    rm -rf "$house"
    PYTHON="$VENV/bin/python" bash scripts/wheelhouse.sh -o "$house" --extras agent,collector >/dev/null \
        || { echo "install-deps: scripts/wheelhouse.sh failed" >&2; exit 1; }
    touch "$house/.stamp"
fi
