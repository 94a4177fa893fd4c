"""Who may import whom (DESIGN.md): an agent installs without the collector's stack, the
collector without SNMP, the wire module with neither, and simulators share none of our code."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

TOP = Path(__file__).parent.parent


def loaded_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    return set(out.stdout.split())


@pytest.mark.parametrize(("module", "forbidden"), [
    # The agent loads aiohttp (the ONVIF stack) only when it has cameras to poll or probe.
    ("wardwatch.agent.core.cli", {"aiohttp", "zeep", "onvif", "wardwatch.collector", "snmpsim"}),
    ("wardwatch.collector.cli", {"pysnmp", "wardwatch.agent", "snmpsim"}),
    ("wardwatch.wire", {"wardwatch.agent", "wardwatch.collector", "pydantic", "paho"}),
])
def test_process_loads_only_its_own_stack(module: str, forbidden: set[str]) -> None:
    loaded = loaded_after_import(module)
    assert not {m for m in loaded if m.split(".")[0] in forbidden or any(m.startswith(f + ".") or m == f
                                                                          for f in forbidden)}


def test_simulators_import_none_of_our_code() -> None:
    for path in (TOP / "simulators").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert not name.startswith(("wardwatch.agent", "wardwatch.collector", "wardwatch.wire")), (
                    f"{path.name} imports {name}")
