"""The scan's HTML report (``scan --report FILE.html``): one self-contained page.

Everything is inline (CSS, SVG charts), there is no script, and the page's
Content-Security-Policy forbids every fetch, so it opens the same anywhere, offline, and
nothing in the data (a host name, a rule title) can run or load anything: all text is
escaped. It shows the numbers of :class:`ScanSummary` (the same as ``--summary FILE.json``):
the scan's figures, hits per level, per rule (with each rule's hits over time on one shared
time axis), the top hosts, and what did not run: rules that failed to compile and why,
rules left out, files skipped, referenced columns the data lacks.
"""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterable, Sequence

from sigmarrow.scan.summary import BUCKET_MS, LEVELS, RuleHits, ScanSummary

__all__ = ["report_html"]

#: At most this many bars on a time axis: buckets are widened to fit.
MAX_BARS = 60
#: Rows of the host table; the JSON summary has them all.
TOP_HOSTS = 20

#: Nothing may be fetched, and no script runs: only the inline style applies.
_CSP = "default-src 'none'; style-src 'unsafe-inline'"
_CSS = """
:root { --ink: #1f2430; --muted: #687082; --line: #dde1e8; --bar: #4a6fa5;
  --informational: #8a94a6; --low: #3f8fd2; --medium: #e0a400; --high: #e8682a;
  --critical: #c62a47; --none: #b0b6c2; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink);
  margin: 0 auto; max-width: 1180px; padding: 24px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 2px; } h2 { font-size: 17px; margin: 32px 0 10px; }
.sub { color: var(--muted); margin: 0 0 18px; }
.figures { display: grid; grid-template-columns: repeat(auto-fill, minmax(160px, 1fr)); gap: 10px; }
.figure { border: 1px solid var(--line); border-radius: 8px; padding: 10px 12px; }
.figure b { display: block; font-size: 22px; font-variant-numeric: tabular-nums; }
.figure span { color: var(--muted); font-size: 12px; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: middle; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.id, td.file { font: 12px ui-monospace, Menlo, Consolas, monospace; color: var(--muted);
  word-break: break-all; }
.level { display: inline-block; min-width: 92px; padding: 1px 8px; border-radius: 10px;
  color: #fff; font-size: 12px; text-align: center; }
.bar { height: 12px; border-radius: 2px; background: var(--bar); }
table.bars { table-layout: fixed; } .bars td { padding: 3px 8px; }
.bars td.label { width: 34%; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.bars td.n { width: 10%; }
svg { display: block; } svg text { font-size: 11px; fill: var(--muted); }
.note { color: var(--muted); font-size: 12px; margin: 6px 0 0; }
.empty { color: var(--muted); }
"""


def report_html(summary: ScanSummary, title: str = "sigmarrow scan report") -> str:
    """The report of ``summary`` as one HTML document."""
    axis = _TimeAxis(summary)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(title)}</title><style>{_CSS}{_level_css()}</style></head><body>",
        f"<h1>{_e(title)}</h1>",
        f'<p class="sub">{_e(_subtitle(summary, axis))}</p>',
        _figures(summary),
        _levels(summary),
        _rules(summary, axis),
        _hosts(summary),
        _not_run(summary),
        (
            '<p class="note">The same numbers, and every rule, host and error, are in the JSON '
            "summary (<code>sigmarrow scan --summary FILE.json</code>).</p>"
        ),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _level_css() -> str:
    return "".join(f".level.{k} {{ background: var(--{k}); }}" for k in (*LEVELS, "none"))


def _level(level: str | None) -> str:
    name = level if level in LEVELS else "none"
    return f'<span class="level {name}">{_e(level or "none")}</span>'


def _subtitle(s: ScanSummary, axis: _TimeAxis) -> str:
    where = "standard output" if s.output == "-" else s.output
    when = f"; events from {axis.label(axis.start)} to {axis.label(axis.end)}" if axis else ""
    return f"hits written to {where}{when}"


def _figures(s: ScanSummary) -> str:
    figures = [
        ("hits", _n(s.hits), "hits"),
        ("rules", f"{_n(len(s.hits_per_rule))} / {_n(s.rules)}", "rules matched / run"),
        ("rows", _n(s.rows), "events scanned"),
        ("files", _n(s.files), "files scanned"),
        ("seconds", f"{s.seconds:,.2f} s", f"scan time ({_n(round(s.rows_per_second))} rows/s)"),
        ("hosts", _n(len(s.hits_per_host)), "hosts with hits"),
        ("compile", f"{s.compile_seconds:,.2f} s", f"rules {s.compile_how or 'given'}"),
        ("errors", _n(len(s.compile_errors)), "rule errors"),
        ("skipped", _n(len(s.skipped_files)), "files skipped"),
    ]
    cards = "".join(
        f'<div class="figure" id="figure-{key}"><b>{_e(value)}</b><span>{_e(what)}</span></div>'
        for key, value, what in figures
    )
    extra = f'<p class="note">log sources: {_e(s.logsource)}</p>' if s.logsource else ""
    return f'<div class="figures">{cards}</div>{extra}'


def _bar_rows(rows: Iterable[tuple[str, str, int]], top: int) -> str:
    """A table of (label html, data attribute, count) rows with bars scaled to ``top``."""
    cells = []
    for label, data, count in rows:
        width = 100 * count / top if top else 0
        cells.append(
            f'<tr {data}><td class="label">{label}</td><td class="n">{_n(count)}</td>'
            f'<td><div class="bar" style="width:{width:.1f}%"></div></td></tr>'
        )
    return f'<table class="bars">{"".join(cells)}</table>'


def _levels(s: ScanSummary) -> str:
    levels = s.hits_per_level
    if not levels:
        return '<h2>Hits per level</h2><p class="empty">No hits.</p>'
    rows = [(_level(k), f'data-level="{_e(k)}"', n) for k, n in levels.items()]
    return "<h2>Hits per level</h2>" + _bar_rows(rows, max(levels.values()))


def _hosts(s: ScanSummary) -> str:
    hosts = sorted(s.hits_per_host.items(), key=lambda kv: (-kv[1], kv[0]))
    head = f"<h2>Top hosts ({_n(len(hosts))} with hits)</h2>"
    if not hosts:
        return head + '<p class="empty">No hits carry a host.</p>'
    rows = [(_e(h), f'data-host="{_e(h)}"', n) for h, n in hosts[:TOP_HOSTS]]
    more = len(hosts) - TOP_HOSTS
    note = f'<p class="note">... and {_n(more)} more hosts.</p>' if more > 0 else ""
    return head + _bar_rows(rows, hosts[0][1]) + note


def _rules(s: ScanSummary, axis: _TimeAxis) -> str:
    head = f"<h2>Hits per rule ({_n(len(s.hits_per_rule))} of {_n(s.rules)} rules matched)</h2>"
    if not s.hits_per_rule:
        return head + '<p class="empty">No rule matched.</p>'
    chart = ""
    if axis:
        total = axis.bins(*(s.hits_over_time.get(h.index, {}) for h in s.hits_per_rule))
        chart = f"<h2>Hits over time ({_e(axis.width_label)} per bar, UTC)</h2>" + axis.chart(
            total, width=1120, height=150, labels=True
        )
        if s.hits_without_time:
            chart += f'<p class="note">{_n(s.hits_without_time)} hits have no event time.</p>'
    rows = "".join(_rule_row(h, s, axis) for h in s.hits_per_rule)
    over_time = "<th>over time</th>" if axis else ""
    table = (
        f'<table class="rules"><tr><th class="n">hits</th><th>level</th><th>rule</th>'
        f"<th>id</th>{over_time}</tr>{rows}</table>"
    )
    return chart + head + table


def _rule_row(h: RuleHits, s: ScanSummary, axis: _TimeAxis) -> str:
    spark = ""
    if axis:
        spark = f"<td>{axis.chart(axis.bins(s.hits_over_time.get(h.index, {})), 260, 26)}</td>"
    return (
        f'<tr data-rule-id="{_e(h.id or "")}"><td class="n hits">{_n(h.count)}</td>'
        f'<td>{_level(h.level)}</td><td>{_e(h.title)}</td><td class="id">{_e(h.id or "")}</td>'
        f"{spark}</tr>"
    )


def _not_run(s: ScanSummary) -> str:
    out = []
    files = s.errors_by_file
    out.append(
        f"<h2>Rules that failed ({_n(len(s.compile_errors))} errors in {_n(len(files))} files)</h2>"
    )
    if files:
        rows = "".join(
            f'<tr><td class="file">{_e(source)}</td><td>{_e(e.title or "")}</td>'
            f'<td class="id">{_e(e.rule_id or "")}</td><td>{_e(e.reason)}</td></tr>'
            for source, errors in files.items()
            for e in errors
        )
        out.append(
            f"<table><tr><th>file</th><th>rule</th><th>id</th><th>why</th></tr>{rows}</table>"
        )
    else:
        out.append('<p class="empty">Every rule compiled.</p>')
    if s.skipped_rules:
        reasons: dict[str, int] = {}
        for e in s.skipped_rules:
            reasons[e.reason] = reasons.get(e.reason, 0) + 1
        rows = "".join(
            f'<tr><td>{_e(r)}</td><td class="n">{_n(n)}</td></tr>'
            for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])
        )
        out.append(f"<h2>Rules left out ({_n(len(s.skipped_rules))})</h2>")
        out.append(f'<table><tr><th>why</th><th class="n">rules</th></tr>{rows}</table>')
    if s.skipped_files:
        rows = "".join(
            f'<tr><td class="file">{_e(f.path)}</td><td>{_e(f.reason)}</td>'
            f'<td class="n">{_n(f.rows_read)}</td></tr>'
            for f in s.skipped_files
        )
        out.append(f"<h2>Files skipped ({_n(len(s.skipped_files))})</h2>")
        head = '<tr><th>file</th><th>why</th><th class="n">rows read before</th></tr>'
        out.append(f"<table>{head}{rows}</table>")
    if s.missing_fields and s.files:
        rows = "".join(
            f'<tr><td>{_e(name)}</td><td class="n">{_n(n)} of {_n(s.files)}</td></tr>'
            for name, n in sorted(s.missing_fields.items())
        )
        out.append(
            f"<h2>Referenced columns missing from the data ({_n(len(s.missing_fields))})</h2>"
        )
        out.append(
            f'<table><tr><th>column</th><th class="n">files without it</th></tr>{rows}</table>'
        )
    return "".join(out)


class _TimeAxis:
    """The time axis every chart shares: from the first to the last bucket of any rule, in
    bars of the narrowest width (of BUCKET_MS, no finer than the summary's) that needs at
    most MAX_BARS bars; times in milliseconds. False when no hit has a time."""

    def __init__(self, s: ScanSummary) -> None:
        starts = [t for buckets in s.hits_over_time.values() for t in buckets]
        self.start = self.end = 0
        self.width = s.time_bucket_ms or BUCKET_MS[0]
        if not starts:
            return
        first, last = min(starts), max(starts) + self.width
        for width in BUCKET_MS:
            if width >= self.width and (last - first) / width <= MAX_BARS:
                self.width = width
                break
        else:
            self.width = BUCKET_MS[-1]
        self.start = first // self.width * self.width
        self.end = -(-last // self.width) * self.width

    def __bool__(self) -> bool:
        return self.end > self.start

    @property
    def count(self) -> int:
        return (self.end - self.start) // self.width

    @property
    def width_label(self) -> str:
        units = [("week", 604_800_000), ("day", 86_400_000), ("hour", 3_600_000)]
        units += [("minute", 60_000), ("second", 1000), ("millisecond", 1)]
        unit, ms = next((unit, ms) for unit, ms in units if self.width % ms == 0)
        n = self.width // ms
        return f"{n} {unit}{'s' if n > 1 else ''}"

    def label(self, t: int) -> str:
        moment = dt.datetime.fromtimestamp(t / 1000, dt.UTC)
        if self.width < 1000:
            return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
        return moment.strftime("%Y-%m-%d %H:%M:%S" if self.width < 60_000 else "%Y-%m-%d %H:%M")

    def bins(self, *series: dict[int, int]) -> list[int]:
        """The hits per bar of one or more {bucket start: hits}."""
        bars = [0] * self.count
        for buckets in series:
            for start, n in buckets.items():
                bars[min((start - self.start) // self.width, self.count - 1)] += n
        return bars

    def chart(self, bars: Sequence[int], width: int, height: int, labels: bool = False) -> str:
        """Bars as inline SVG; each bar's tooltip says its time and count."""
        pad = 18 if labels else 0
        top = max(bars) or 1
        step = width / len(bars)
        rects = []
        for i, n in enumerate(bars):
            if not n:
                continue
            h = max((height - pad) * n / top, 1.5)
            tip = (
                f"{self.label(self.start + i * self.width)} UTC: {_n(n)} hit{'s' if n != 1 else ''}"
            )
            rects.append(
                f'<rect x="{i * step:.1f}" y="{height - pad - h:.1f}" '
                f'width="{max(step - 1, 1):.1f}" '
                f'height="{h:.1f}" fill="var(--bar)"><title>{_e(tip)}</title></rect>'
            )
        text = ""
        if labels:
            y = height - 4
            text = (
                f'<text x="0" y="{y}">{_e(self.label(self.start))}</text>'
                f'<text x="{width}" y="{y}" text-anchor="end">{_e(self.label(self.end))}</text>'
                f'<text x="{width}" y="11" text-anchor="end">max {_n(top)}</text>'
            )
        return (
            f'<svg viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'role="img" aria-label="hits over time">{"".join(rects)}{text}</svg>'
        )
