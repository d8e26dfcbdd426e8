"""The measuring instruments: the benches' event generator and answer checks
(``benches/``), ``sigmarrow bench``, ``sigmarrow profile`` and ``sigmarrow explain``.
Nothing here is timed: the tests check structure and answers (profile's per-rule hits equal
``Matcher.match``'s, planted positives match, every peer of the bench gives the expected
count, ``sigmarrow bench`` reports the hits ``Matcher.match`` finds)."""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from conftest import load_engine
from sigmahq import SIGMA_DIR, requires_sigma

sigmarrow, _why = load_engine()
pytestmark = pytest.mark.skipif(sigmarrow is None, reason=_why)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples" / "rules"
sys.path.insert(0, str(REPO / "benches"))  # the benches are scripts there, not a package
import _common
import generate
import headline

CLOUDFLARED = EXAMPLES / "proc_creation_win_cloudflared_portable_execution.yml"

NOT_ONLY = """
title: Anything but svchost
id: 00000000-0000-4000-8000-000000000001
logsource: {category: process_creation, product: windows}
detection:
    filter:
        Image|endswith: '\\svchost.exe'
    condition: not filter
level: low
"""
CMD_ECHO = """
title: Cmd echo redirect
id: 00000000-0000-4000-8000-000000000002
logsource: {category: process_creation, product: windows}
detection:
    selection:
        Image|endswith: '\\cmd.exe'
        CommandLine|contains|all:
            - ' echo '
            - ' > '
    filter:
        User|startswith: 'NT AUTHORITY'
    condition: selection and not filter
level: low
"""
POWERSHELL = """
title: PowerShell with a script file
id: 00000000-0000-4000-8000-000000000003
logsource: {category: process_creation, product: windows}
detection:
    selection_img:
        - Image|endswith: '\\powershell.exe'
        - OriginalFileName: 'PowerShell.EXE'
    selection_cli:
        CommandLine|re: '(?i)-file\\s+\\S+\\.ps1'
    condition: all of selection_*
level: low
"""


@pytest.fixture(scope="module")
def small_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("rules")
    for path in EXAMPLES.glob("*.yml"):
        shutil.copy(path, folder / path.name)
    for i, text in enumerate((NOT_ONLY, CMD_ECHO, POWERSHELL)):
        (folder / f"extra_{i}.yml").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def compiled(small_set: Path):
    return _common.compile_with_rules(small_set)


@pytest.fixture(scope="module")
def events(compiled) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    matcher, rules = compiled
    positives = generate.Positives(rules=rules, program=matcher.program)
    return generate.generate_events(3_000, seed=5, positives=positives, synth_rate=0.02)


# --- the generator -----------------------------------------------------------------------


def test_generator_is_deterministic_and_shaped_like_sysmon() -> None:
    a, _ = generate.generate_events(2_000, seed=3)
    b, _ = generate.generate_events(2_000, seed=3)
    c, _ = generate.generate_events(2_000, seed=4)
    assert a.equals(b)
    assert not a.equals(c)
    assert a.column_names == list(generate.COLUMNS)
    assert a.schema.field("EventID").type == pa.int64()
    assert all(a.schema.field(n).type == pa.string() for n in generate.COLUMNS if n != "EventID")
    assert pc.all(pc.equal(a.column("EventID"), 1)).as_py()
    images = a.column("Image").to_pylist()
    counts = Counter(images)
    # Zipf-like: a few images are very common, most are rare.
    assert counts.most_common(1)[0][1] > 0.05 * len(images)
    assert len(counts) > 300
    assert sum(1 for c in counts.values() if c == 1) > 100
    cmd = a.column("CommandLine")
    assert 40 <= pc.mean(pc.binary_length(cmd)).as_py() <= 90
    assert len(pc.unique(cmd)) > 0.3 * len(cmd)
    assert pc.all(pc.is_valid(a.column("ParentImage"))).as_py()
    assert set(a.column("IntegrityLevel").to_pylist()) <= {"System", "High", "Medium"}


def test_generator_dictionary_encoding_keeps_values() -> None:
    plain, _ = generate.generate_events(1_000, seed=2)
    encoded, _ = generate.generate_events(1_000, seed=2, dictionary=True)
    for name in generate.COLUMNS:
        column = encoded.column(name)
        assert pa.types.is_dictionary(column.type) == (name in generate.DICTIONARY_COLUMNS)
        assert column.to_pylist() == plain.column(name).to_pylist()


def test_generator_fixed_events_replace_generated_values(compiled) -> None:
    matcher, rules = compiled
    positives = generate.Positives(rules=rules, program=matcher.program)
    image = "C:\\Users\\Public\\cloudflared.exe"
    fixed = {row: {"Image": image, "CommandLine": f"cloudflared.exe update {row}"} for row in range(0, 2_000, 7)}
    plain, _ = generate.generate_events(2_000, seed=8)
    table, planted = generate.generate_events(2_000, seed=8, positives=positives, synth_rate=0.05, fixed=fixed)
    images, commands = table.column("Image").to_pylist(), table.column("CommandLine").to_pylist()
    for row in range(2_000):
        if row in fixed:
            assert (images[row], commands[row]) == (image, f"cloudflared.exe update {row}")
            assert table.column("User")[row] == plain.column("User")[row]  # the rest is generated
    assert planted and not {row for row, _, _ in planted} & set(fixed)  # no positive overwritten
    assert generate.missed_positives(matcher, table, planted) == []
    with pytest.raises(ValueError, match="row 5: unknown columns \\['Imag'\\]"):
        generate.generate_events(10, fixed={5: {"Imag": "x"}})
    with pytest.raises(ValueError, match="row 10: not in 0..9"):
        generate.generate_events(10, fixed={10: {"Image": "x"}})


def test_synthesized_positives_match_in_the_engine(compiled, events) -> None:
    matcher, _ = compiled
    table, planted = events
    synthesized = [(row, rid) for row, rid, source in planted if source == "synthesized"]
    assert len(synthesized) >= 40
    # Rules whose conditions can be solved: all but none here.
    assert len({rid for _, rid in synthesized}) >= 4
    hits = matcher.match(table)
    found = set(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist()))
    assert set(synthesized) <= found


@requires_sigma
def test_regression_events_are_sysmon_process_creation() -> None:
    regression = generate.load_regression_events(SIGMA_DIR)
    if not regression:
        pytest.skip("the evtx reader is not available")
    assert len(regression) > 100
    for event, ids in regression:
        assert event["EventID"] == 1 and event["Image"]
        assert all(len(i) == 36 for i in ids)


def test_image_column_expected_count_equals_engine() -> None:
    matcher, rules = _common.compile_with_rules(CLOUDFLARED)
    plain = generate.image_column(200_000, seed=9, cloudflared_rate=1e-3)
    encoded = generate.image_column(200_000, seed=9, dictionary=True, cloudflared_rate=1e-3)
    assert pa.types.is_dictionary(encoded.column("Image").type)
    assert plain.column("Image").to_pylist() == encoded.column("Image").to_pylist()
    expected = headline.cloudflared_expected(plain, rules[0])
    assert expected > 0
    assert headline.cloudflared_expected(encoded, rules[0]) == expected
    for table in (plain, encoded):
        assert matcher.match(table).num_rows == expected


def test_generate_script_writes_parquet(tmp_path: Path, small_set: Path) -> None:
    out = tmp_path / "events.parquet"
    positives = tmp_path / "positives.parquet"
    subprocess.run(
        [sys.executable, str(REPO / "benches" / "generate.py"), "--rows", "1500", "--out", str(out),
         "--dictionary", "--rules", str(small_set), "--synth-rate", "0.02", "--positives", str(positives)],
        check=True, capture_output=True, text=True)
    table = pq.read_table(out)
    assert table.num_rows == 1500
    assert pa.types.is_dictionary(table.schema.field("Image").type)
    planted = pq.read_table(positives)
    assert planted.num_rows > 0
    assert set(planted.column("source").to_pylist()) <= {"synthesized", "regression"}


def test_logsource_of_reads_the_top_level_block() -> None:
    text = ("title: x\nlogsource:\n    product: windows\n    category: process_creation\n"
            "detection:\n    sel:\n        category: foo\n    condition: sel\n")
    assert _common.logsource_of(text) == {"product": "windows", "category": "process_creation"}
    assert _common.logsource_of("title: x\n") == {}
    assert _common.logsource_of("logsource: {category: process_creation, product: windows}\n") == {
        "category": "process_creation", "product": "windows"}


@requires_sigma
def test_process_creation_selection_matches_the_corpus_count() -> None:
    files = _common.process_creation_files(SIGMA_DIR)
    assert 1_300 <= len(files) <= 1_600
    assert any(f.name == "proc_creation_win_cloudflared_portable_execution.yml" for f in files)


# --- profile -------------------------------------------------------------------------------


def test_profile_hits_equal_match_counts(compiled, events) -> None:
    from sigmarrow.profile import profile

    matcher, _ = compiled
    table, _ = events
    result = profile(matcher, table, repeat=1)
    counts = Counter(matcher.match(table).column("rule_id").to_pylist())
    assert [r.hits for r in result.rules] == [counts.get(r.id, 0) for r in matcher.rules]
    assert sum(counts.values()) > 0
    by_title = {r.title: r for r in result.rules}
    assert by_title["Anything but svchost"].candidates == -1  # `not` alone: every row
    for r in result.rules:
        assert r.candidates == -1 or r.candidates >= r.hits
        assert r.seconds > 0 and 0 <= r.share <= 1
        # The engine evaluates a rule on its plan rows, within its witness rows: its hits are there.
        assert r.plan_rows == -1 or r.hits <= r.plan_rows
        assert r.witness_rows == -1 or r.plan_rows <= r.witness_rows
    assert by_title["Anything but svchost"].plan_rows == -1
    planned = [r for r in result.rules if r.witness_rows >= 0]
    assert planned and any(r.lazy for r in planned) and any(r.witness_rows < len(table) for r in planned)
    assert abs(sum(r.share for r in result.rules) - 1) < 1e-9
    columns = {c.name: c for c in result.columns}
    assert set(columns) == set(matcher.fields)
    assert columns["Image"].atoms >= 5 and columns["Image"].distinct > 100
    assert columns["CommandLine"].atom_hits > 0


def test_subprogram_of_each_rule_gives_its_hits(compiled, events) -> None:
    matcher, _ = compiled
    table, _ = events
    hits = matcher.match(table)
    for i, info in enumerate(matcher.rules):
        alone = sigmarrow.Matcher(matcher.program.subprogram([matcher.program.rules[i]]))
        assert len(alone.program.atoms) <= len(matcher.program.atoms)
        mine = alone.match(table)
        expected = pc.filter(hits.column("row"), pc.equal(hits.column("rule_id"), info.id))
        assert mine.column("row").to_pylist() == expected.to_pylist()


def test_profile_command_table_plot_and_json(tmp_path: Path, small_set: Path, events) -> None:
    from sigmarrow import profile as profiling

    table, _ = events
    data = tmp_path / "events.parquet"
    pq.write_table(table, data)
    p = argparse.ArgumentParser()
    profiling.add_arguments(p)
    plot, out_json = tmp_path / "p.html", tmp_path / "p.json"
    args = p.parse_args([str(small_set), "--input", str(data), "--repeat", "1", "--plot", str(plot),
                         "--json", str(out_json)])
    assert profiling.run(args) == 0
    text = plot.read_text(encoding="utf-8")
    assert "<html>" in text and "Cloudflared Portable Execution" in text
    dumped = json.loads(out_json.read_text(encoding="utf-8"))
    assert dumped["rows"] == table.num_rows
    assert {r["title"] for r in dumped["rules"]} >= {"Cmd echo redirect", "Anything but svchost"}


def test_profile_prints_a_readable_table(capsys: pytest.CaptureFixture[str], small_set: Path,
                                         tmp_path: Path, events) -> None:
    from sigmarrow import profile as profiling

    table, _ = events
    data = tmp_path / "events.parquet"
    pq.write_table(table, data)
    p = argparse.ArgumentParser()
    profiling.add_arguments(p)
    assert profiling.run(p.parse_args([str(small_set), "-i", str(data), "--repeat", "1", "--top", "3"])) == 0
    out = capsys.readouterr().out
    assert "Rules by time alone (top 3 of 6" in out
    assert "Columns" in out and "CommandLine" in out


# --- explain -------------------------------------------------------------------------------


def _explain(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    from sigmarrow import explain

    p = argparse.ArgumentParser()
    explain.add_arguments(p)
    status = explain.run(p.parse_args(argv))
    return status, capsys.readouterr().out


def test_explain_names_literals_condition_and_witness(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _explain([str(CLOUDFLARED)], capsys)
    assert status == 0
    assert "Cloudflared Portable Execution (fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd)" in out
    assert "Image endswith '\\cloudflared.exe'" in out
    assert "':\\Program Files (x86)\\cloudflared\\'" in out
    assert "NOT" in out and "AND" in out
    assert "[only under NOT]" in out
    witness, lazy = out.split("Witness:")[1].split("Lazy:")
    assert "\\cloudflared.exe" in witness and "Program Files" not in witness
    assert "Program Files (x86)" in lazy and "\\cloudflared.exe'" not in lazy


def test_explain_shared_literals_and_lookup_by_id(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _explain(["fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd", "--rules", str(EXAMPLES)], capsys)
    assert status == 0
    # The quick-tunnel rule also looks for Image|endswith '\cloudflared.exe'.
    assert "shared with 1 other rule: Cloudflared Quick Tunnel Execution" in out
    assert "used by no other rule of the set" in out


def test_explain_json_is_a_one_rule_program(capsys: pytest.CaptureFixture[str]) -> None:
    status, out = _explain([str(CLOUDFLARED), "--json"], capsys)
    assert status == 0
    data = json.loads(out)
    assert len(data["rules"]) == 1 and data["fields"] == ["Image"] and len(data["atoms"]) == 3
    sigmarrow.Program(data)  # valid


def test_explain_unknown_rule_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert _explain(["no-such-rule", "--rules", str(EXAMPLES)], capsys)[0] == 2
    assert _explain(["no-such-file.yml"], capsys)[0] == 2


def test_engine_plan_witness_and_lazy_atoms_and_triggers(tmp_path: Path) -> None:
    from cases import rule_yaml

    detections = [
        "s: {F|contains: 'a'}\nt: {F|contains: 'longer literal'}\ncondition: s and t",
        "s: {F|contains: 'longer literal'}\nf: {F|contains: 'filter'}\ncondition: s and not f",
        "s: {F|contains: 'a'}\ncondition: not s",
        "s: {F|contains: 'x'}\nt: {F|contains: 'yy'}\nu: {F|contains: 'a'}\ncondition: s or (t and u)",
        "s: {F|contains: 'x'}\nt: {F|contains: 'yy'}\ncondition: s or not t",
        "s: {F|contains: 'longer literal'}\nt: {F|re: 'x+y'}\ncondition: s and t",
    ]
    for i, detection in enumerate(detections):
        (tmp_path / f"r{i}.yml").write_text(rule_yaml(detection, title=f"r{i}", rule_id=f"00000000-0000-0000-0000-00000000000{i}"))
    matcher = sigmarrow.compile(sorted(str(p) for p in tmp_path.glob("*.yml")))
    atom = {a.get("value", a.get("pattern")): i for i, a in enumerate(matcher.program.atoms)}

    def plan(m: sigmarrow.Matcher, rule: int) -> tuple:
        return m.rule_plan(rule)

    def triggers(atom: dict) -> list[str]:
        return matcher.atom_triggers(atom) or []

    a, long, x, yy, filt, regex_atom = (atom[v] for v in ("a", "longer literal", "x", "yy", "filter", "x+y"))
    # (needed sets, witness, lazy atoms)
    assert plan(matcher, 0) == ([[a], [long]], [long], [])  # the longer literal is the witness
    assert plan(matcher, 1) == ([[long]], [long], [filt])  # the filter is lazy
    assert plan(matcher, 2) == ([], None, [])  # true with no atom: evaluated everywhere
    assert plan(matcher, 3)[1] in ([x, yy], [x, a], [yy, x], [a, x])
    assert plan(matcher, 4) == ([], None, [])
    assert plan(matcher, 5) == ([[long]], [long], [regex_atom])  # the regex runs only where the literal hit
    # Without the prefilter, nothing is lazy and no witness is chosen.
    assert plan(matcher.with_options(prefilter=False), 1) == ([[long]], None, [])
    data = pa.table({"F": ["x a longer literal", "longer literal filter", "xxy longer literal", "q"]})
    hits = matcher.match(data)
    assert hits.equals(matcher.with_options(prefilter=False, memo=False).match(data))
    assert [(r, k) for r, k in zip(hits["row"].to_pylist(), hits["rule_id"].to_pylist()) if k[-1] in "15"] \
        == [(0, matcher.rules[1].id), (2, matcher.rules[1].id), (2, matcher.rules[5].id)]

    def regex(pattern: str) -> dict:
        return {"op": "re", "field": 0, "pattern": pattern, "flags": ""}

    assert triggers(regex(r"\\cloudflared\.exe$")) == ["\\cloudflared.exe"]
    assert triggers(regex(r"(?i)-file\s+\S+\.ps1")) == ["-file"]
    assert triggers(regex("ab|cd")) == ["ab", "cd"]
    assert triggers(regex(r"abc+de")) == ["ab"]
    assert triggers(regex(".*")) == []


# --- the bench's own answer checks ----------------------------------------------------------


def test_sql_suspects_name_known_backend_bugs() -> None:
    assert "unescaped _/% in ILIKE" in headline.sql_suspects("SELECT * FROM logs WHERE Image ILIKE '%______.exe'")
    assert "case-sensitive =" in headline.sql_suspects("SELECT * FROM logs WHERE OriginalFileName='reg.exe'")
    assert "NOT over NULL drops the event" in headline.sql_suspects("SELECT * FROM logs WHERE NOT (a ILIKE '%x%')")
    assert headline.sql_suspects("SELECT * FROM logs WHERE Image ILIKE '%\\cmd.exe'") == []


def test_bench_measure_checks_every_answer(tmp_path: Path) -> None:
    """A miniature bench over a fake checkout holding the example rules: every engine, peer
    and check runs, and sigmarrow's answers all check out."""
    pytest.importorskip("duckdb")
    pytest.importorskip("sigma_backend_duckdb")
    pytest.importorskip("polars")
    fake = tmp_path / "sigma"
    folder = fake / "rules" / "windows" / "process_creation"
    folder.mkdir(parents=True)
    for path in EXAMPLES.glob("*.yml"):
        shutil.copy(path, folder / path.name)
    (folder / "extra.yml").write_text(CMD_ECHO, encoding="utf-8")
    for other in ("rules-emerging-threats", "rules-threat-hunting"):
        (fake / other).mkdir()
    cfg = headline.Config(sigma_dir=fake, events=3_000, engine_seconds=0.01, duckdb_events=1_000,
                       check_events=300, reference_pairs=200, cloudflared_rows=50_000, budget=0.001,
                       workdir=tmp_path / "work", log=lambda msg: None)
    report = headline.measure(cfg)
    assert not report.failed, report.markdown()
    engines = [r.engine for r in report.rows]
    assert "sigmarrow, 1 thread" in engines
    assert any(e.startswith("DuckDB") for e in engines)
    assert any(e.startswith("pyarrow.compute") for e in engines)
    assert any(e.startswith("polars") for e in engines)
    cloudflared = [r for r in report.rows if r.work.startswith("Cloudflared")]
    assert cloudflared and all(r.answer.endswith("= expected") for r in cloudflared)
    full = [r for r in report.rows if r.work == "4 rules" and r.engine.startswith("DuckDB")]
    assert full and "on 4 of 4 rules" in full[0].answer, [(r.work, r.engine, r.answer) for r in report.rows]
    text = report.markdown()
    assert "| work | engine | rows |" in text and "## Answers checked" in text
    assert np.isfinite(report.rows[0].rate)


# --- sigmarrow bench -------------------------------------------------------------------------

_HIT_LINE = re.compile(r"^\s+([\d,]+)\s+\S+\s+(.+)  \(([0-9a-f-]{36})\)$", re.MULTILINE)


def _sigmarrow_bench(cwd: Path, *args: str, sigma_dir: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m sigmarrow bench ARGS` in `cwd`, with only the package sources on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("SIGMARROW_SIGMA_DIR", "PYTHONPATH")}
    env["PYTHONPATH"] = str(Path(sigmarrow.__file__).resolve().parent.parent)
    env["SIGMARROW_SIGMA_DIR"] = str(sigma_dir or cwd / "no-snapshot-here")
    return subprocess.run([sys.executable, "-m", "sigmarrow", "bench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300, check=False)


def _reported_hits(out: str) -> Counter:
    return Counter({rule_id: int(n.replace(",", "")) for n, _, rule_id in _HIT_LINE.findall(out)})


@pytest.fixture()
def bench_dir(tmp_path: Path) -> Path:
    """A folder far from the repository with three rules: two that the built-in sample
    matches, and the Cloudflared rule, which it does not."""
    rules = tmp_path / "my rules"
    rules.mkdir()
    shutil.copy(CLOUDFLARED, rules / CLOUDFLARED.name)
    for i, text in enumerate((CMD_ECHO, POWERSHELL)):
        (rules / f"rule_{i}.yml").write_text(text, encoding="utf-8")
    return tmp_path


def test_bench_command_reports_the_hits_of_match_on_the_sample(bench_dir: Path) -> None:
    from sigmarrow.bench import sample_events

    run = _sigmarrow_bench(bench_dir, "my rules", "--rows", "3000", "--runs", "2", "--threads", "1,2")
    assert run.returncode == 0, run.stderr
    matcher = sigmarrow.compile(bench_dir / "my rules")
    expected = Counter(matcher.match(sample_events(3_000)).column("rule_id").to_pylist())
    assert len(expected) == 2 and sum(expected.values()) > 30
    assert _reported_hits(run.stdout) == expected
    assert f"{sum(expected.values()):,} hits on 2 of 3 rules" in run.stdout
    assert "3,000 events of the built-in sample" in run.stdout
    timings = re.findall(r"^\s+([12])\s+[\d.,]+ ms\s+[\d.,]+ ms\s+[\d,]+\s+[\d,]+$", run.stdout, re.MULTILINE)
    assert timings == ["1", "2"], run.stdout


def test_bench_command_reads_the_given_data(bench_dir: Path) -> None:
    data = bench_dir / "events.parquet"
    table, _ = generate.generate_events(2_000, seed=4, fixed={5: {"Image": "C:\\Users\\x\\cloudflared.exe"}})
    pq.write_table(table, data)
    run = _sigmarrow_bench(bench_dir, "my rules", "--input", "events.parquet", "--runs", "1")
    assert run.returncode == 0, run.stderr
    expected = Counter(sigmarrow.compile(bench_dir / "my rules").match(table).column("rule_id").to_pylist())
    assert expected["fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd"] == 1
    assert _reported_hits(run.stdout) == expected
    assert "2,000 events of 1 file" in run.stdout
    bad = _sigmarrow_bench(bench_dir, "my rules", "--input", "nothing.parquet")
    assert bad.returncode == 2 and "input not found: nothing.parquet" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_bench_command_defaults_to_the_rule_snapshot(bench_dir: Path) -> None:
    from sigmarrow.bench import sample_events

    snapshot = bench_dir / "sigma"
    shutil.copytree(bench_dir / "my rules", snapshot / "rules" / "windows")
    run = _sigmarrow_bench(bench_dir, "--rows", "1000", "--runs", "1", sigma_dir=snapshot)
    assert run.returncode == 0, run.stderr
    assert f"rules: 3 from the SigmaHQ snapshot at {snapshot.resolve()} (rules)" in run.stdout
    assert _reported_hits(run.stdout) == Counter(
        sigmarrow.compile(snapshot).match(sample_events(1_000)).column("rule_id").to_pylist())
    missing = _sigmarrow_bench(bench_dir)
    assert missing.returncode == 2
    assert "no RULES given and no SigmaHQ rule snapshot found" in missing.stderr
    assert "sigmarrow bench RULES..." in missing.stderr and "SIGMARROW_SIGMA_DIR" in missing.stderr


def test_bench_uses_only_the_public_api() -> None:
    """`sigmarrow bench` ships in the wheel: it imports sigmarrow, its public scan entry
    points and the evtx reader, never the compiler or the extension."""
    import ast

    tree = ast.parse((REPO / "python" / "sigmarrow" / "bench.py").read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    assert {m for m in imported if m and m.startswith("sigmarrow")} <= {"sigmarrow", "sigmarrow.scan", "sigmarrow.evtx"}


def test_profile_missing_input_is_a_usage_error(tmp_path: Path) -> None:
    from sigmarrow import profile as profiling
    from sigmarrow.cli import UsageError

    p = argparse.ArgumentParser()
    profiling.add_arguments(p)
    with pytest.raises(UsageError, match="no such file"):
        profiling.run(p.parse_args([str(CLOUDFLARED), "--input", str(tmp_path / "none.parquet")]))
