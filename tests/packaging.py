"""Build wardwatch's wheel from a copy of this tree and install it into fresh venvs with no
network, for the packaging, upgrade and deployment tests.

The third-party wheels come from ``.venv/wheelhouse`` (written by ``make deps`` through
scripts/wheelhouse.sh, the one step that reaches PyPI); the tests themselves fetch nothing:
every ``pip install`` runs with ``--no-index`` inside a network namespace of its own
(``unshare --net``: not even loopback is up), so a wheel missing from the house fails the
install instead of being downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOUSE = ROOT / ".venv" / "wheelhouse"
# The tree's own products and caches; everything else of the checkout goes into the copy.
SKIP = (".venv", ".git", "dist", "build", "run", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache",
        ".mypy_cache", "*.db", "*.db-wal", "*.db-shm")


def version() -> str:
    found = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert found, "pyproject.toml has no version"
    return found.group(1)


def build(out: Path, *, as_version: str | None = None) -> tuple[Path, Path]:
    """(wheel, sdist) of this tree, built by ``python -m build`` (sdist first, the wheel from
    it) without fetching anything; ``as_version`` builds it as another version (an upgrade)."""
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(*SKIP))
    if as_version is not None:
        py = src / "pyproject.toml"
        py.write_text(re.sub(r'^version = "[^"]+"', f'version = "{as_version}"', py.read_text(), count=1, flags=re.M))
    dist = out / "dist"
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(src)], timeout=300)
    v = as_version or version()
    wheel, sdist = dist / f"wardwatch-{v}-py3-none-any.whl", dist / f"wardwatch-{v}.tar.gz"
    assert wheel.is_file() and sdist.is_file(), sorted(p.name for p in dist.iterdir())
    return wheel, sdist


def house(out: Path, *wheels: Path) -> Path:
    """A wheelhouse folder: the third-party wheels of ``.venv/wheelhouse`` and ``wheels``
    (wardwatch's own, built by :func:`build`), nothing else."""
    assert (HOUSE / ".stamp").is_file(), f"{HOUSE} is missing: run `make deps` (scripts/install-deps.sh)"
    out.mkdir(parents=True)
    for whl in HOUSE.glob("*.whl"):
        if not whl.name.startswith("wardwatch-"):
            os.link(whl, out / whl.name) if whl.stat().st_dev == out.stat().st_dev else shutil.copy(whl, out)
    for whl in wheels:
        shutil.copy(whl, out / whl.name)
    return out


def venv(path: Path, *, pip: bool = True) -> Path:
    """A fresh venv on the Python of the test venv (its wheels are built for it); its bin/.
    ``pip=False`` leaves pip out (8 s less: ensurepip is most of a venv's cost); then
    :func:`offline_install` runs the test venv's pip for it (``pip --python``), and the venv
    holds only what was installed into it."""
    base = getattr(sys, "_base_executable", sys.executable)
    run([base, "-m", "venv", *([] if pip else ["--without-pip"]), str(path)], timeout=120)
    return path / "bin"


def offline_install(bin_dir: Path, wheels: Path, *requirements: str, upgrade: bool = False) -> str:
    """``pip install --no-index --find-links wheels REQ...`` in a network namespace with no
    network at all; pip's output. The venv's own pip, or for a venv made without one the
    test venv's (``pip --python``: the same resolver, for the target's interpreter)."""
    own = (bin_dir / "pip").exists()
    python = str(bin_dir / "python")
    pip = [python, "-m", "pip"] if own else [sys.executable, "-m", "pip", "--python", python]
    cmd = ["unshare", "--net", "--", *pip, "install", "--disable-pip-version-check",
           "--no-index", "--find-links", str(wheels), *(["--upgrade"] if upgrade else []), *requirements]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip.conf names extra indexes; a target has none
    return run(cmd, timeout=300, env=env)


def distributions(bin_dir: Path) -> set[str]:
    """Normalised names of every distribution installed in that venv."""
    code = ("import importlib.metadata as m, re; print('\\n'.join(sorted("
            "{re.sub(r'[-_.]+', '-', d.metadata['Name']).lower() for d in m.distributions()})))")
    return set(run([str(bin_dir / "python"), "-c", code], timeout=60).split())


def run(cmd: list[str], *, timeout: float, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    if proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout
