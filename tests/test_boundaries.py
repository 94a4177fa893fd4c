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


CONTRACT = {"poller", "config", "errors", "ports", "text", "icmp"}  # what a device family may use of core
FAMILIES = ("snmp", "camera")


def agent_imports(path: Path) -> list[str]:
    """Every wardwatch.agent.* module a file imports, at any level (function-level imports too)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names]
    return [n for n in names if n.startswith("wardwatch.agent.")]


@pytest.mark.parametrize("family", FAMILIES)
def test_device_families_use_only_cores_contract_and_never_each_other(family: str) -> None:
    other = next(f for f in FAMILIES if f != family)
    for path in (TOP / "agent" / family).glob("*.py"):
        for name in agent_imports(path):
            parts = name.split(".")
            assert parts[2] != other, f"agent/{family}/{path.name} imports {name}"
            if parts[2] == "core" and len(parts) > 3:
                assert parts[3] in CONTRACT, f"agent/{family}/{path.name} imports core's {parts[3]}"


def test_core_names_the_families_only_in_the_registry_and_the_tools() -> None:
    for path in (TOP / "agent" / "core").glob("*.py"):
        if path.name in ("cli.py", "discover.py"):  # the technician's tools: profiles check, sweep
            continue
        for name in agent_imports(path):
            assert name.split(".")[2] not in FAMILIES, f"agent/core/{path.name} imports {name}"


def test_a_switches_only_agent_process_loads_no_camera_code() -> None:
    loaded = loaded_after_import("wardwatch.agent.core.app")
    assert not {m for m in loaded if m.startswith(("wardwatch.agent.camera", "wardwatch.agent.snmp", "onvif",
                                                   "zeep", "aiohttp", "pysnmp"))}
