"""Log-source applicability and routing (docs/logsources.md): the declaration, the reasons,
the routing check, and the scan's default (the dataset's declaration, else a guess)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sigmarrow
import yaml
from cases import rule_yaml
from sigmahq import SIGMA_DIR, requires_sigma, rule_index
from sigmarrow.cli import main
from sigmarrow.logsource import LogSource

ROOT = Path(__file__).resolve().parents[1]


def _rule(title: str, logsource: str, detection: str = "sel: {A: 'x'}\ncondition: sel") -> str:
    text = rule_yaml(detection, title=title)
    return text.replace("logsource:\n    product: test\n", f"logsource:\n{logsource}\n")


RULES = {
    "zeek rule": "    product: zeek\n    service: conn",
    "windows pc": "    product: windows\n    category: process_creation",
    "windows security": "    product: windows\n    service: security",
    "windows product only": "    product: windows",
    "windows file_access": "    product: windows\n    category: file_access",
    "generic proxy": "    category: proxy",
    "generic antivirus": "    category: antivirus",
}
TEXTS = [_rule(t, ls) for t, ls in RULES.items()]


def _kept(**kwargs: object) -> dict[str, list[str]]:
    m = sigmarrow.compile(TEXTS, **kwargs)  # type: ignore[arg-type]
    return {"run": sorted(r.title for r in m.rules), "left out": sorted(f"{e.title}: {e.reason}" for e in m.skipped)}


def test_parse_declarations() -> None:
    assert LogSource.parse("windows") == LogSource("windows")
    assert LogSource.parse("Windows/Process_Creation") == LogSource("windows", "process_creation")
    assert LogSource.parse("windows//security") == LogSource("windows", None, "security")
    assert LogSource.parse("product=windows,service=security") == LogSource("windows", None, "security")
    assert str(LogSource("windows", None, "security")) == "windows//security"
    for bad in ("", "/", "a/b/c/d", "vendor=x"):
        with pytest.raises(sigmarrow.UsageError):
            LogSource.parse(bad)


def test_nothing_declared_runs_every_rule() -> None:
    assert _kept() == {"run": sorted(RULES), "left out": []}


def test_windows_declared_leaves_out_other_products_and_generic_rules() -> None:
    assert _kept(logsource="windows") == {
        "run": ["windows file_access", "windows pc", "windows product only", "windows security"],
        "left out": [
            "generic antivirus: not applicable: generic rule (no product) of category antivirus",
            "generic proxy: not applicable: generic rule (no product) of category proxy",
            "zeek rule: not applicable: product zeek",
        ],
    }


def test_category_and_service_declarations() -> None:
    assert _kept(logsource="windows/process_creation")["run"] == ["windows pc", "windows product only"]
    assert _kept(logsource="windows//security")["run"] == ["windows product only", "windows security"]
    assert _kept(logsource=["windows//security", "zeek"])["run"] == [
        "windows product only", "windows security", "zeek rule"
    ]
    # A service rule is not of a declared category (zeek conn is not proxy data).
    assert _kept(logsource="/proxy")["run"] == ["generic proxy", "windows product only"]


def test_routing_pipeline_leaves_out_what_it_cannot_route_unless_asked() -> None:
    routed = _kept(logsource="windows", pipeline="windows")
    assert routed["run"] == ["generic antivirus", "windows pc", "windows product only", "windows security"]
    assert (
        "windows file_access: not routed: no routing for windows category file_access in the pipeline"
        in routed["left out"]
    )
    assert "windows file_access" in _kept(logsource="windows", pipeline="windows", unrouted=True)["run"]
    # An explicitly declared category needs no routing: the data is all of it.
    assert _kept(logsource="windows/file_access", pipeline="windows")["run"] == [
        "windows file_access", "windows product only"
    ]
    # sysmon routes categories only: it holds back unrouted categories, not services.
    sysmon = _kept(logsource="windows", pipeline="sysmon")
    assert "windows security" in sysmon["run"] and "windows file_access: not routed" in " ".join(sysmon["left out"])


def _scan(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, list[dict], str]:
    code = main(["scan", *map(str, args)])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, [json.loads(line) for line in out.out.splitlines() if line.strip()], out.err


@pytest.fixture
def rules_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "zeek.yml").write_text(_rule("zeek everything", "    product: zeek", "sel: {Q: 'x'}\ncondition: not sel"))
    (folder / "win.yml").write_text(_rule("windows x", "    product: windows", "sel: {A: 'x'}\ncondition: sel"))
    return folder


def _events(path: Path, metadata: dict[bytes, bytes] | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table({"EventID": [1, 2], "Computer": ["h", "h"], "A": ["x", "y"]})
    pq.write_table(table.replace_schema_metadata(metadata), path)
    return path


def test_scan_guesses_windows_from_the_columns(capsys, tmp_path, rules_dir) -> None:
    code, hits, err = _scan(capsys, rules_dir, "--input", _events(tmp_path / "d.parquet"), "--output", "-")
    assert code == 0 and [h["rule_title"] for h in hits] == ["windows x"]
    assert "log sources: windows (guessed from the columns EventID, Computer)" in err
    assert "not applicable: product zeek (1 rule)" in err


def test_scan_any_runs_every_rule_and_warns(capsys, tmp_path, rules_dir) -> None:
    code, hits, err = _scan(capsys, rules_dir, "-i", _events(tmp_path / "d.parquet"), "-o", "-", "--logsource", "any")
    assert code == 0
    assert sorted(h["rule_title"] for h in hits) == ["windows x", "zeek everything", "zeek everything"]
    assert "warning: the rules are of 2 products (windows, zeek)" in err and "--logsource windows" in err


def test_scan_reads_the_declaration_from_parquet_metadata_and_hive_keys(capsys, tmp_path, rules_dir) -> None:
    tagged = _events(tmp_path / "m.parquet", {b"sigmarrow.logsource": b"zeek"})
    code, hits, err = _scan(capsys, rules_dir, "-i", tagged, "-o", "-")
    assert code == 0 and [h["rule_title"] for h in hits] == ["zeek everything"] * 2
    assert "log sources: zeek (from " in err and "m.parquet's metadata)" in err
    _events(tmp_path / "lake" / "product=zeek" / "day=1" / "part.parquet")
    code, hits, err = _scan(capsys, rules_dir, "-i", tmp_path / "lake", "-o", "-")
    assert [h["rule_title"] for h in hits] == ["zeek everything"] * 2
    assert "log sources: zeek (from the dataset's partition keys)" in err


@requires_sigma
def test_newcomer_scan_of_all_sigmahq_rules_gives_only_windows_hits(capsys) -> None:
    """The first command a newcomer runs: no pipeline, no declaration."""
    code, hits, err = _scan(capsys, SIGMA_DIR / "rules", "--input", ROOT / "examples" / "process_creation.parquet", "--output", "-")
    assert code == 0 and hits
    files = rule_index()
    products = {
        (yaml.safe_load(files[i].read_text(encoding="utf-8"))["logsource"] or {}).get("product")
        for i in {h["rule_id"] for h in hits}
    }
    assert products == {"windows"}
    assert "Publicly Accessible RDP Service" not in {h["rule_title"] for h in hits}
    assert "not applicable: product zeek" in err


# --------------------------------------------------------------------------------------
# Rule selection (sigmarrow.selection): level, status, tags, ids
# --------------------------------------------------------------------------------------


def _meta_rule(title: str, level: str | None, status: str | None, tags: list[str], rule_id: str) -> str:
    text = rule_yaml("sel: {A: 'x'}\ncondition: sel", title=title, rule_id=rule_id)
    extra = (f"level: {level}\n" if level else "") + (f"status: {status}\n" if status else "")
    extra += ("tags:\n" + "".join(f"    - {t}\n" for t in tags)) if tags else ""
    return text + extra


SELECTION_RULES = [
    _meta_rule("crit stable", "critical", "stable", ["attack.execution", "attack.t1059.001"], "00000000-0000-0000-0000-000000000001"),
    _meta_rule("high test", "high", "test", ["attack.t1003"], "00000000-0000-0000-0000-000000000002"),
    _meta_rule("low exp", "low", "experimental", [], "00000000-0000-0000-0000-000000000003"),
    _meta_rule("old", "high", "deprecated", ["attack.t1059"], "00000000-0000-0000-0000-000000000004"),
    _meta_rule("no level", None, None, [], "00000000-0000-0000-0000-000000000005"),
]


def _selected(**kwargs: object) -> list[str]:
    from sigmarrow.selection import RuleSelection

    m = sigmarrow.compile(SELECTION_RULES, select=RuleSelection.of(**kwargs))  # type: ignore[arg-type]
    assert len(m.rules) + len(m.skipped) == len(SELECTION_RULES)
    return sorted(r.title for r in m.rules)


def test_selection_by_level_status_tag_and_id() -> None:
    assert _selected() == ["crit stable", "high test", "low exp", "no level"]  # deprecated out
    assert _selected(min_level="high") == ["crit stable", "high test"]
    assert _selected(statuses=["deprecated"]) == ["old"]  # asking for it wins over the default
    assert _selected(exclude_statuses=[]) == ["crit stable", "high test", "low exp", "no level", "old"]
    assert _selected(tags=["attack.t1059*"]) == ["crit stable"]
    assert _selected(tags=["ATTACK.T1003"]) == ["high test"]
    assert _selected(rule_ids=["00000000-0000-0000-0000-000000000003"]) == ["low exp"]
    assert _selected(exclude_rules=["crit stable", "00000000-0000-0000-0000-000000000002"]) == ["low exp", "no level"]
    assert sigmarrow.compile(SELECTION_RULES).rules.__len__() == 5  # no selection in the API by default
    with pytest.raises(sigmarrow.UsageError, match="unknown level"):
        _selected(min_level="severe")


def test_scan_selection_flags_and_summary(capsys, tmp_path) -> None:
    folder = tmp_path / "sel"
    folder.mkdir()
    for i, text in enumerate(SELECTION_RULES):
        (folder / f"r{i}.yml").write_text(text)
    data = tmp_path / "d.parquet"
    pq.write_table(pa.table({"A": ["x"]}), data)
    code, hits, err = _scan(capsys, folder, "-i", data, "-o", "-", "--level", "high", "--tag", "attack.t1*")
    assert code == 0 and sorted(h["rule_title"] for h in hits) == ["crit stable", "high test"]
    assert "not selected: level low is below high (1 rule)" in err
    assert "not selected: status deprecated (left out by default; --status deprecated runs it) (1 rule)" in err
