#!/usr/bin/env bash
# mypy --strict on the agent, the collector, the simulators and the modules they share (STYLE.md).
# The repository keeps agent/ and collector/ at the top level and installs them as
# wardwatch.agent and wardwatch.collector; mypy cannot see that mapping, so it checks a
# throw-away tree of links that spells the installed layout.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
tree=$(mktemp -d)
trap 'rm -rf "$tree"' EXIT
mkdir -p "$tree/wardwatch"
for f in "$top"/wardwatch/*.py; do ln -s "$f" "$tree/wardwatch/"; done
ln -s "$top/agent" "$tree/wardwatch/agent"
ln -s "$top/collector" "$tree/wardwatch/collector"
ln -s "$top/simulators" "$tree/wardwatch/simulators"
cd "$tree"
"$top/.venv/bin/mypy" --config-file "$top/pyproject.toml" --cache-dir "$top/.mypy_cache" \
    -p wardwatch.agent -p wardwatch.collector -p wardwatch.simulators -m wardwatch.wire -m wardwatch.config -m wardwatch.mqtt -m wardwatch.aio -m wardwatch.sqlite
