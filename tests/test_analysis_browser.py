"""The HTML report in headless Chromium: tables found, every chart decoded, names shown as text.

Skipped only when Chromium is not installed (Debian: ``apt-get install chromium``; CI installs
it). Chromium runs in its own session and process group; whatever of it is left when it returns
is stopped by process-group id, so no helper process outlives the test.

Set ``FWBENCH_SCREENSHOT_DIR`` to keep the screenshot somewhere else than the test's tmp folder.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from analysis import report
from analysis.html import CSP
from benchmarks.synthrun import SynthTarget, make_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = [
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="chromium is not installed (apt-get install -y chromium); CI has it",
    ),
    pytest.mark.child_process,  # Chromium renders a file: no server, no load (not e2e)
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-breakpad",
    "--hide-scrollbars",
]
HOSTILE = "evil<script>document.title='pwned'</script>"
NONCE = "fwbench-test"

# Runs once the page has loaded; writes what it found into the DOM for --dump-dom to print.
PROBE = """<script nonce="@NONCE@">
window.addEventListener("load", function () {
  var r = {};
  var tables = document.querySelectorAll("table.ranking");
  r.rankings = tables.length;
  r.rankedRows = tables.length ? tables[0].querySelectorAll("tbody.ranked tr").length : 0;
  r.notRanked = Array.from(document.querySelectorAll("tbody.not-ranked tr[data-state]"))
    .map(function (tr) { return tr.getAttribute("data-state"); });
  var imgs = Array.from(document.querySelectorAll("figure.chart img"));
  r.images = imgs.length;
  r.decoded = imgs.filter(function (i) {
    return i.complete && i.naturalWidth > 0 && i.naturalHeight > 0;
  }).length;
  r.names = Array.from(document.querySelectorAll("td.target .name"))
    .map(function (e) { return e.textContent; });
  r.scripts = document.scripts.length;
  r.title = document.title;
  var first = document.querySelector("section");
  r.firstSection = first ? first.id : null;
  var pre = document.createElement("pre");
  pre.id = "fwbench-probe";
  pre.textContent = JSON.stringify(r);
  document.body.appendChild(pre);
});
</script>""".replace("@NONCE@", NONCE)


def _stop_group(pgid: int) -> None:
    """Stop what is left of the process group we started (by pid, as found by group id)."""
    for p in psutil.process_iter(["pid"]):
        try:
            if p.pid != os.getpid() and os.getpgid(p.pid) == pgid:
                p.kill()
        except (ProcessLookupError, psutil.Error):
            continue


def _chromium(args: list[str], profile: Path, timeout: float = 120.0) -> str:
    assert CHROMIUM is not None
    proc = subprocess.Popen(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise
    finally:
        _stop_group(proc.pid)
    assert proc.returncode == 0, err[-2000:]
    return out


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("browser")
    run = make_run(
        base / "run",
        [
            SynthTarget("starlette", "Starlette", rps=11_000),
            SynthTarget(HOSTILE, "Evil<b>Framework", rps=9_000),
            SynthTarget("blacksheep", "BlackSheep", rps=14_000, saturated_trials=frozenset({1})),
            SynthTarget("bottle", "Bottle", failure="server exited with code 3"),
        ],
    )
    return report.write_report([run], base / "report", base)


def test_report_in_chromium(page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    assert CSP in text
    # The probe is allowed by a nonce; the page's own policy stays as it is for everything else.
    probed = text.replace(CSP, f"{CSP}; script-src 'nonce-{NONCE}'").replace(
        "</body>", PROBE + "\n</body>"
    )
    check = page.with_name("probe.html")
    check.write_text(probed, encoding="utf-8")
    dom = _chromium(
        ["--virtual-time-budget=10000", "--dump-dom", check.as_uri()], tmp_path / "profile"
    )
    found = re.search(r'<pre id="fwbench-probe">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    r = json.loads(html.unescape(found.group(1)))
    assert r["firstSection"] == "rankings"
    assert r["rankings"] == 1 and r["rankedRows"] == 2
    assert sorted(r["notRanked"]) == ["client_saturated", "failed"]
    assert r["images"] == 4, r
    assert r["decoded"] == r["images"], r
    assert HOSTILE in r["names"]  # shown as text, exactly
    assert r["scripts"] == 1  # the probe only: the name did not become a script
    assert r["title"].startswith("fwbench report") and "pwned" not in r["title"]


def test_report_screenshot(page: Path, tmp_path: Path) -> None:
    keep = os.environ.get("FWBENCH_SCREENSHOT_DIR")
    folder = Path(keep) if keep else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    if shot.exists():
        shot.unlink()
    _chromium(
        ["--window-size=1360,4200", f"--screenshot={shot}", page.as_uri()], tmp_path / "profile"
    )
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 20_000
    print(f"screenshot: {shot}")
