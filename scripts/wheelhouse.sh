#!/usr/bin/env bash
# Write a folder of every wheel a ward office box (or the data centre) needs, for an install
# with no network:   pip install --no-index --find-links DIR 'wardwatch[agent]'
#
#   scripts/wheelhouse.sh [-o DIR] [--extras agent[,collector]] [--python X.Y] [--platform TAG]
#                         [--no-isolation]
#
# -o DIR          where to write (default dist/wheelhouse); wheels already there are kept
# --extras        which of wardwatch's extras to carry (default agent)
# --python X.Y    the target's Python (Debian 12 and Raspberry Pi OS 12: 3.11; Debian 13: 3.13);
#                 default: this machine's
# --platform TAG  the target's platform, e.g. manylinux_2_36_aarch64 for a Raspberry Pi 4/5 on
#                 Debian 12 (glibc 2.36); default: this machine's. With --python or --platform,
#                 only binary wheels are taken (pip download --only-binary=:all:), since nothing
#                 can be compiled for another machine here.
# --no-isolation  build wardwatch's own wheel with this Python's setuptools instead of fetching
#                 them (python -m build --no-isolation)
#
# It first builds wardwatch's wheel and sdist into dist/ (python -m build), then lets pip resolve
# and fetch the extras' dependencies. Run it where PyPI is reachable, with the Python of the venv
# that has `build` (make deps installs it: .venv/bin/python). It ends with SHA256SUMS in DIR.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
[ -x "$PY" ] || PY=python3
out=dist/wheelhouse
extras=agent
target_py=""
platform=""
isolation=()
while [ $# -gt 0 ]; do
    case "$1" in
        -o|--out) out=$2; shift 2 ;;
        --extras) extras=$2; shift 2 ;;
        --python) target_py=$2; shift 2 ;;
        --platform) platform=$2; shift 2 ;;
        --no-isolation) isolation=(--no-isolation); shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "wheelhouse: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$extras" in
    *[!a-z,]*|"") echo "wheelhouse: --extras is a comma-separated list of agent, collector, sim" >&2; exit 2 ;;
esac
"$PY" -c 'import build' 2>/dev/null \
    || { echo "wheelhouse: $PY has no 'build' module (make deps installs it, or: $PY -m pip install build)" >&2; exit 1; }

version=$("$PY" -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])')
echo "wheelhouse: building wardwatch $version (wheel and sdist) into dist/"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$PY" -m build "${isolation[@]}" --outdir dist . >"$log" 2>&1 \
    || { tail -20 "$log" >&2; echo "wheelhouse: python -m build failed" >&2; exit 1; }
wheel="dist/wardwatch-$version-py3-none-any.whl"
[ -f "$wheel" ] || { echo "wheelhouse: $wheel was not built" >&2; exit 1; }

mkdir -p "$out"
cp "$wheel" "$out/"
req="$(cd "$out" && pwd)/$(basename "$wheel")[$extras]"
echo "wheelhouse: fetching the wheels of wardwatch[$extras]${platform:+ for $platform}${target_py:+, Python $target_py}"
if [ -n "$platform$target_py" ]; then
    cross=(--only-binary=:all: --implementation cp)
    if [[ "$platform" =~ ^manylinux_2_([0-9]+)_([a-z0-9_]+)$ ]]; then
        # pip takes --platform literally: a glibc 2.36 target also runs the manylinux_2_17..2_35
        # (and manylinux2014) wheels that most projects publish, so every one is named.
        glibc=${BASH_REMATCH[1]} arch=${BASH_REMATCH[2]}
        cross+=(--platform "manylinux2014_$arch")
        for ((minor = 17; minor <= glibc; minor++)); do cross+=(--platform "manylinux_2_${minor}_$arch"); done
    elif [ -n "$platform" ]; then
        cross+=(--platform "$platform")
    fi
    [ -n "$target_py" ] && cross+=(--python-version "$target_py")
    "$PY" -m pip download --disable-pip-version-check -q --dest "$out" "${cross[@]}" "$req" >"$log" 2>&1 \
        || { tail -20 "$log" >&2; echo "wheelhouse: pip download failed" >&2; exit 1; }
else
    # pip wheel also builds a wheel for a dependency published only as an sdist.
    "$PY" -m pip wheel --disable-pip-version-check -q --wheel-dir "$out" "$req" >"$log" 2>&1 \
        || { tail -20 "$log" >&2; echo "wheelhouse: pip wheel failed" >&2; exit 1; }
fi
# pip download may leave an sdist where a wheel was wanted; the target could not build it.
odd=$(find "$out" -maxdepth 1 -type f ! -name '*.whl' ! -name SHA256SUMS ! -name .stamp -printf '%f ')
[ -z "$odd" ] || { echo "wheelhouse: $out holds files that are not wheels: $odd" >&2; exit 1; }
# The units and the deployment's example configs travel with the wheels (docs/deploy.md).
if [ -d deploy ]; then
    rm -rf "$out/deploy" && cp -r deploy "$out/deploy"
fi
(cd "$out" && sha256sum -- *.whl > SHA256SUMS)
count=$(ls "$out"/*.whl | wc -l)
size=$(du -sh "$out" | cut -f1)
echo "wheelhouse: $out: $count wheels, $size. On the target, with no network:"
echo "    python3 -m venv /opt/wardwatch && /opt/wardwatch/bin/pip install --no-index --find-links $out 'wardwatch[${extras%%,*}]'"
