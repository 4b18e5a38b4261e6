"""The HTML license report (issue 12) as a browser renders it: headless
Chromium (Debian's chromium-headless-shell) with every host name unresolvable,
so anything the page tried to fetch would fail and be logged. The page must
render every chart, log no console error, and fit a phone's width.
SEATGATE_UPDATE_DOCS=1 also writes docs/report.png (the README shows it)."""
import os
import re
import shutil
import subprocess

import pytest

import helpers
from helpers import EX_OK
from test_core_report import Month, at

CHROMIUM = shutil.which("chromium-headless-shell") or shutil.which("chromium")


def chromium(*args, timeout=120):
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--enable-logging=stderr", "--v=0", "--host-resolver-rules=MAP * ~NOTFOUND"]
    return subprocess.run(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout)


@pytest.fixture
def report_html(seatctl, tmp_path):
    if CHROMIUM is None:
        pytest.fail("chromium-headless-shell missing (make deps)")
    P = "portal"
    seatctl("pool", "set", P, "--named", "1", "--floating", "3", "--idle-timeout", "12h",
            "--mux-limit", "1", "--test-clock", "@%d" % at(1, 8), check=EX_OK)
    seatctl("assign", P, "ann", check=EX_OK)
    seatctl("user", "set", "bridge", "--service-account", check=EX_OK)
    m = Month(seatctl, P)
    for day in range(1, 15):
        # (hour, user, login or logout): a fortnight with busy mornings
        plan = [(8, "ann", 1), (8, "bo", 1), (9, "dee", 1)]
        if day % 2:
            plan += [(9, "cy", 1), (12, "cy", 0)]
        if day % 4 == 0:
            plan += [(9, "eve", 1), (11, "eve", 0)]
        if day % 3 == 0:
            plan += [(10, "bridge h%d" % day, 1), (11, "bridge h%d" % day, 0),
                     (13, "bridge k%d" % day, 1), (14, "bridge k%d" % day, 0)]
        plan += [(15, "dee", 0), (16, "ann", 0), (16 + day % 3, "bo", 0)]
        for hour, who, on in sorted(plan, key=lambda p: (p[0], -p[2])):
            m.clock(at(day, hour))
            if who.startswith("bridge "):
                human = who.split()[1]
                if on:
                    m.login("bridge", human, on_behalf_of=human)
                else:
                    m.seatctl("release", P, human, "--session", human)
            elif on:
                m.login(who, "s")
            else:
                m.logout(who, "s")
    m.clock(at(15, 0))
    out = tmp_path / "report.html"
    seatctl("report", "--format", "html", "--out", str(out), "--since", "2026-11-01",
            "--until", "2026-11-15", check=EX_OK)
    return out


def test_the_page_is_self_contained(report_html):
    html = report_html.read_text()
    assert "<script" not in html.lower()
    # nothing to fetch: no src, href, url() or @import (the SVG namespace is a name)
    assert not re.search(r"\b(src|href)\s*=|url\(|@import", html, re.I), html[:500]
    assert html.count("http") == html.count('xmlns="http://www.w3.org/2000/svg"')
    assert '<meta name="viewport"' in html and "@media print" in html


def test_chromium_renders_every_chart_without_errors(report_html, tmp_path):
    url = "file://" + str(report_html)
    dom = chromium("--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for chart in ("chart-usage-0", "chart-hours-0", "chart-reasons-0"):
        m = re.search(r'<svg id="%s".*?</svg>' % chart, dom.stdout, re.S)
        assert m, chart
        assert m.group(0).count("<rect") >= 1, chart
    assert "Recommended" in dom.stdout and "Service accounts (" in dom.stdout
    bad = [ln for ln in dom.stderr.splitlines()
           if "CONSOLE" in ln or "net::ERR" in ln or "Uncaught" in ln]
    assert bad == [], bad
    # a phone (390 px) and a desktop: both render, the page is not blank
    for width, name in ((390, "phone.png"), (1000, "report.png")):
        shot = tmp_path / name
        res = chromium("--window-size=%d,1500" % width, "--screenshot=%s" % shot, url)
        assert res.returncode == 0 and shot.exists(), res.stderr[-2000:]
        assert shot.stat().st_size > 20000, (name, shot.stat().st_size)
        bad = [ln for ln in res.stderr.splitlines() if "CONSOLE" in ln or "net::ERR" in ln]
        assert bad == [], bad
    if os.environ.get("SEATGATE_UPDATE_DOCS") == "1":
        shutil.copy(str(tmp_path / "report.png"), os.path.join(helpers.REPO, "docs",
                                                               "report.png"))
