"""`wardwatch-collector report`: the frame every report goes through (collector/cli.py):
times local in --tz, every format to stdout or to --out inside --out-dir (and never
outside it), one-line errors with exit 2 for bad arguments and 1 when InfluxDB is away."""

from __future__ import annotations

import asyncio
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.util import BIN, write_yaml
from wardwatch.collector.cli import main, output_path
from wardwatch.collector.influx import InfluxV1Writer
from wardwatch.simulators.lab import InfluxService

START = datetime(2026, 11, 2, tzinfo=UTC)
START_MS = int(START.timestamp() * 1000)


def _config(tmp_path: Path, url: str, database: str) -> Path:
    return write_yaml(tmp_path / "collector.yaml", {
        "mqtt": {"host": "127.0.0.1", "port": 1},
        "influx": {"api": "v1", "url": url, "database": database},
        "wards": {"cam-pho": "Cẩm Phô"},
    })  # fmt: skip


def _run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([str(BIN / "wardwatch-collector"), "report", *argv], capture_output=True, timeout=60,
                          check=False, cwd=cwd)  # fmt: skip


def _write(influx: InfluxService, database: str) -> None:
    # sw-1 in Cẩm Phô, polled every 60 s for two hours from 07:00 local (00:00Z), all up.
    lines = [f"device_status,ward=cam-pho,device=sw-1,kind=switch up=1i {START_MS + k * 60_000 + 5_000}".encode()
             for k in range(120)]  # fmt: skip

    async def go() -> None:
        async with InfluxV1Writer(url=influx.url, database=database) as client:
            await client.write(lines)

    asyncio.run(go())


@pytest.mark.services
def test_the_report_goes_to_stdout_or_into_the_output_folder_in_every_format(
    influx: InfluxService, database: str, tmp_path: Path
) -> None:
    _write(influx, database)
    cfg = _config(tmp_path, influx.url, database)
    # No offset: local time in --tz (the default, the config's Asia/Ho_Chi_Minh, is +07:00).
    span = ("uptime", "-c", str(cfg), "--from", "2026-11-02T07:00", "--to", "2026-11-02T09:00", "--ward", "cam-pho")
    done = _run(*span)
    assert done.returncode == 0, done.stderr
    table = done.stdout.decode()
    assert table.splitlines()[1] == "2026-11-02T07:00:00+07:00 .. 2026-11-02T09:00:00+07:00 (Asia/Ho_Chi_Minh)"
    assert "Cẩm Phô" in table and "sw-1" in table
    utc = _run(*span, "--tz", "UTC")
    assert utc.returncode == 0, utc.stderr
    assert utc.stdout.decode().splitlines()[1] == "2026-11-02T07:00:00+00:00 .. 2026-11-02T09:00:00+00:00 (UTC)"

    out = tmp_path / "out"
    out.mkdir()
    for fmt, name in (("html", "uptime.html"), ("json", "uptime.json"), ("csv", "uptime.csv")):
        done = _run(*span, "--format", fmt, "--out", name, "--out-dir", str(out))
        assert done.returncode == 0 and done.stdout == b"", done.stderr
    page = (out / "uptime.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and '<html lang="vi">' in page and "Cẩm Phô" in page
    assert "sw-1" in page
    assert (out / "uptime.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    assert "sw-1" in json.dumps(json.loads((out / "uptime.json").read_text()))
    # {section}: one CSV per section, each with its BOM; relative to the current folder by default.
    done = _run(*span, "--format", "csv", "--out", "up-{section}.csv", cwd=out)
    assert done.returncode == 0, done.stderr
    split = sorted(out.glob("up-*.csv"))
    assert split and all(p.read_bytes().startswith(b"\xef\xbb\xbf") for p in split)
    assert not list(out.glob(".*.tmp"))

    # Out of the folder: refused before any query, one line, exit 2.
    (tmp_path / "elsewhere").mkdir()
    (out / "link").symlink_to(tmp_path / "elsewhere")
    for bad in ("../escape.html", str(tmp_path / "escape.html"), "link/escape.html"):
        done = _run(*span, "--format", "html", "--out", bad, "--out-dir", str(out))
        assert done.returncode == 2, (bad, done)
        assert len(done.stderr.decode().strip().splitlines()) == 1 and b"--out" in done.stderr, done.stderr
    assert not list(tmp_path.rglob("escape.html"))


def test_bad_arguments_exit_2_and_an_absent_influxdb_exits_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)
    cfg = _config(tmp_path, "http://127.0.0.1:9", "wardwatch")  # port 9 (discard): nothing listens
    span = ("-c", str(cfg), "--from", "2026-11-02T07:00", "--to", "2026-11-02T09:00")
    cases = {
        ("uptime", *span, "--tz", "Mars/Olympus"): b"unknown time zone 'Mars/Olympus'",
        ("uptime", "-c", str(cfg), "--from", "2026-11-02T09:00", "--to", "2026-11-02T07:00"): b"is not after",
        ("uptime", *span, "--from", "yesterday"): b"not an ISO 8601 time",
        ("uptime", *span, "--ward", "x' OR 1=1"): b"is not a ward id",
        ("coverage", *span, "--step", "60"): b"--step is not an option of report coverage",
        ("uptime", *span, "--what-if", "cameras=1,bitrate=1"): b"--what-if is not an option of report uptime",
        ("capacity", *span, "--util-threshold", "120"): b"--util-threshold",
        ("uptime", *span, "--format", "html", "--out", "r-{section}.html"): b"for --format csv only",
        ("uptime", "-c", str(tmp_path / "missing.yaml"), *span[2:]): b"missing.yaml",
    }
    for argv, said in cases.items():  # in this process: ten interpreters would take 9 s
        assert main(["report", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert said.decode() in err and len(err.strip().splitlines()) == 1, (argv, err)
    done = _run("uptime", *span)
    assert done.returncode == 1, done
    assert done.stderr.startswith(b"wardwatch-collector: error: ") and len(done.stderr.strip().splitlines()) == 1


def test_the_output_name_stays_inside_the_output_folder(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    (root / "month").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (root / "out-link").symlink_to(tmp_path / "secret")
    (root / "in-link").symlink_to(root / "month")
    assert output_path(root, "a.html") == root.resolve() / "a.html"
    assert output_path(root, "month/a.csv") == root.resolve() / "month" / "a.csv"
    assert output_path(root, str(root / "b.json")) == root.resolve() / "b.json"
    assert output_path(root, "in-link/c.html") == root.resolve() / "month" / "c.html"
    for bad in ("../a.html", "month/../../a.html", "month/../a.html", str(tmp_path / "a.html"), "out-link",
                "/etc/passwd", "", "month/"):  # fmt: skip
        with pytest.raises(ValueError):
            output_path(root, bad)
