"""`scan --report FILE.html`: one self-contained page, checked in a real headless browser.

The page is rendered by Debian's `chromium` (`.ci/run` installs it): it must render without
a single console message (a fetch the page's Content-Security-Policy blocks, a script, a
style it refuses would each log one) and show the numbers of the scan, the same as the
JSON summary. Hostile text from the data (a host name, a rule title) must show as text.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import test_scan
from test_scan import IMAGES, PORTABLE_RULE, rule_file

sigscan = test_scan.sigscan  # the fixture of the scan tests

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium on PATH to render the report (Debian: apt-get install chromium; "
    ".ci/run installs it)",
)

HIGH_ID = "0d0a0b0c-0000-4000-8000-00000000beef"
HOSTILE_HOST = '<script>alert("host")</script>'
HOSTILE_TITLE = "Cloudflared <img src=x onerror=alert(1)> Again"


def scenario(tmp_path: Path) -> tuple[Path, Path]:
    """Rules (two that match, one broken file) and events over two days on four hosts."""
    rules = tmp_path / "rules"
    rule_file(rules, PORTABLE_RULE, "portable.yml")
    rule_file(
        rules,
        PORTABLE_RULE.replace("fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd", HIGH_ID)
        .replace("title: Cloudflared Portable Execution", f"title: '{HOSTILE_TITLE}'")
        .replace("level: medium", "level: high")
        .replace("Image|endswith: '\\cloudflared.exe'", "Image|endswith: '\\CloudFlared.Exe'"),
        "high.yml",
    )
    rule_file(rules, "title: Broken\ndetection: [unclosed\n", "broken.yml")
    hosts = ["WS1", "WS1", "WS2", HOSTILE_HOST, "WS1", "WS3"]
    times = [f"2026-11-0{1 + i // 3} {8 + i}:00:00" for i in range(6)]
    images = [IMAGES[0], IMAGES[5], IMAGES[1], IMAGES[5], IMAGES[10], IMAGES[6]]
    data = tmp_path / "events.parquet"
    pq.write_table(
        pa.table(
            {
                "EventID": [1] * 6,
                "Channel": ["Microsoft-Windows-Sysmon/Operational"] * 6,
                "Computer": hosts,
                "UtcTime": times,
                "Image": images,
            }
        ),
        data,
    )
    return rules, data


def run_report(sigscan, tmp_path: Path) -> tuple[Path, dict]:
    rules, data = scenario(tmp_path)
    report, summary = tmp_path / "report.html", tmp_path / "summary.json"
    run = sigscan(
        rules,
        "--input",
        data,
        "--output",
        tmp_path / "hits.parquet",
        "--report",
        report,
        "--summary",
        summary,
    )
    assert run.code == 0, run.err
    return report, json.loads(summary.read_text())


class Page(HTMLParser):
    """What a test reads off the rendered page: texts by element id, the hit counts of rule
    and host rows, and every element name."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.by_id: dict[str, str] = {}
        self.rules: dict[str, str] = {}
        self.hosts: dict[str, str] = {}
        self.text: list[str] = []
        self._open: list[tuple[str, dict[str, str | None], list[str]]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag not in ("meta", "rect", "br"):
            self._open.append((tag, dict(attrs), []))

    def handle_endtag(self, tag):
        while self._open:
            name, attrs, parts = self._open.pop()
            text = "".join(parts)
            if self._open:
                self._open[-1][2].append(text if name != "td" else text + "\t")
            if attrs.get("id"):
                self.by_id[attrs["id"]] = text
            if "data-rule-id" in attrs:
                self.rules[attrs["data-rule-id"]] = text.split("\t")[0]
            if "data-host" in attrs:
                self.hosts[attrs["data-host"]] = text.split("\t")[1]
            if name == tag:
                break

    def handle_data(self, data):
        self.text.append(data)
        if self._open:
            self._open[-1][2].append(data)


def expected(summary: dict) -> dict:
    return {
        "rules": {h["id"]: str(h["count"]) for h in summary["hits_per_rule"]},
        "hosts": {h: str(n) for h, n in summary["hits_per_host"].items()},
    }


def test_report_html_is_self_contained_and_escaped(sigscan, tmp_path):
    report, summary = run_report(sigscan, tmp_path)
    text = report.read_text()
    assert "Content-Security-Policy" in text and "default-src 'none'" in text
    assert "<script" not in text and "http://" not in text and "https://" not in text
    assert "&lt;script&gt;alert(&quot;host&quot;)&lt;/script&gt;" in text
    page = Page(text)
    assert "img" not in page.tags and "script" not in page.tags
    assert page.by_id["figure-hits"].startswith(str(summary["hits"]))
    assert page.rules == expected(summary)["rules"]
    assert page.hosts == expected(summary)["hosts"]
    # The numbers themselves, worked out by hand: both rules match rows 0, 1, 2, 3 and 5
    # (their endswith ignores case; row 4 is svchost.exe).
    assert summary["hits"] == 10
    assert summary["hits_per_level"] == {"high": 5, "medium": 5}
    assert summary["hits_per_host"] == {"WS1": 4, "WS2": 2, HOSTILE_HOST: 2, "WS3": 2}
    assert any("broken.yml" in e["source"] for e in summary["compile_errors"])
    assert "broken.yml" in text


@needs_chromium
def test_report_renders_in_a_browser(sigscan, tmp_path):
    report, summary = run_report(sigscan, tmp_path)
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--v=0",
            "--dump-dom",
            report.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    page = Page(proc.stdout)
    assert page.by_id["figure-hits"].startswith(str(summary["hits"]))
    assert page.by_id["figure-rules"].startswith(f"{len(summary['hits_per_rule'])} / 2")
    assert page.by_id["figure-errors"].startswith("1")
    assert page.rules == expected(summary)["rules"]
    assert page.hosts == expected(summary)["hosts"]
    assert HOSTILE_HOST in page.hosts and "script" not in page.tags
    assert HOSTILE_TITLE in "".join(page.text)
    assert "broken.yml" in "".join(page.text)
