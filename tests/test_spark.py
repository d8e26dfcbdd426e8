"""sigmarrow.spark against a real local Spark: the hits must be exactly the plain engine's.

Needs pyspark (with pandas) and a Java runtime; the Spark tests skip, saying which is
missing, when either is absent. One Spark session serves the whole module (start-up is
about 7 s on this machine).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pyarrow as pa
import pytest
import sigmarrow

pytestmark = [
    # PySpark and py4j use APIs that newer Pythons and pandas deprecate; only theirs are
    # ignored, a warning raised from sigmarrow still fails the test.
    pytest.mark.filterwarnings("ignore::DeprecationWarning:pyspark"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning:py4j"),
    pytest.mark.filterwarnings("ignore:.*pandas.*:FutureWarning:pyspark"),
]

N_EVENTS = 3000

RULES = [
    textwrap.dedent(text)
    for text in (
        r"""
        title: Whoami Execution
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000001
        status: test
        level: medium
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            Image|endswith: '\whoami.exe'
          condition: selection
        """,
        r"""
        title: Encoded PowerShell
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000002
        status: test
        level: high
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            Image|endswith: '\powershell.exe'
            CommandLine|contains: ' -enc '
          condition: selection
        """,
        r"""
        title: Mimikatz Keyword
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000003
        status: test
        level: critical
        logsource: {category: process_creation, product: windows}
        detection:
          keywords:
            - '*sekurlsa::logonpasswords*'
          condition: keywords
        """,
        r"""
        title: Rundll32 Without Filter
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000004
        status: test
        level: low
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            Image|endswith: '\rundll32.exe'
          filter:
            ParentCommandLine|contains: 'trusted'
          condition: selection and not filter
        """,
        r"""
        title: Net User Add
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000005
        status: test
        level: high
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            EventID: 1
            Image|endswith: '\net.exe'
            CommandLine|contains|all:
              - 'user'
              - '/add'
          condition: selection
        """,
    )
]
KEYWORD_RULE = "5bd53c3e-5e4c-4e3b-8a52-000000000003"
RULE_IDS = {f"5bd53c3e-5e4c-4e3b-8a52-00000000000{i}" for i in range(1, 6)}

SYSTEM32 = "C:\\Windows\\System32\\"


def make_events(n: int = N_EVENTS, seed: int = 5) -> pa.Table:
    """Process-creation events with positives for every rule in RULES. No column
    ParentCommandLine: the `not filter` of the rundll32 rule is on an absent field."""
    rng = random.Random(seed)
    images = ["svchost.exe", "explorer.exe", "cmd.exe", "conhost.exe", "notepad.exe"]
    rows: dict[str, list] = {
        k: []
        for k in (
            "event_id",
            "EventID",
            "Image",
            "CommandLine",
            "ParentImage",
            "User",
            "Description",
        )
    }
    for i in range(n):
        image = SYSTEM32 + rng.choice(images)
        cmd = f"{image} /q {rng.randrange(10**6)}"
        description = "Windows host process"
        kind = rng.randrange(20)
        if kind == 0:
            image = SYSTEM32 + rng.choice(["whoami.exe", "WHOAMI.EXE"])
            cmd = "whoami /all"
        elif kind == 1:
            image = SYSTEM32 + "WindowsPowerShell\\v1.0\\powershell.exe"
            cmd = rng.choice(["powershell.exe -nop -enc SQBFAFgA", "powershell.exe -encx y"])
        elif kind == 2:
            cmd = "mimikatz.exe privilege::debug sekurlsa::logonpasswords exit"
        elif kind == 3:
            description = "dumps SEKURLSA::LogonPasswords"  # a column no rule names
        elif kind == 4:
            image = SYSTEM32 + "rundll32.exe"
            cmd = "rundll32.exe shell32.dll,Control_RunDLL"
        elif kind == 5:
            image = SYSTEM32 + "net.exe"
            cmd = rng.choice(["net user eve P@ss /add", "net user eve", "net localgroup /add"])
        rows["event_id"].append(i)
        rows["EventID"].append(4688 if rng.randrange(10) == 0 else 1)
        rows["Image"].append(image)
        rows["CommandLine"].append(None if rng.randrange(50) == 0 else cmd)
        rows["ParentImage"].append(SYSTEM32 + "services.exe")
        rows["User"].append(None if rng.randrange(7) == 0 else f"CORP\\user{rng.randrange(40)}")
        rows["Description"].append(description)
    types = {"event_id": pa.int64(), "EventID": pa.int64()}
    return pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in rows.items()})


def engine_hits(matcher, table: pa.Table, key: str = "event_id") -> set[tuple[int, str]]:
    hits = matcher.match(table)
    keys = table.column(key).take(hits.column("row")).to_pylist()
    return set(zip(keys, hits.column("rule_id").to_pylist(), strict=True))


def spark_hits(result, key: str = "event_id") -> set[tuple[int, str]]:
    rows = [(r[key], r["rule_id"]) for r in result.collect()]
    assert len(rows) == len(set(rows)), "a (event, rule) hit was reported twice"
    return set(rows)


def with_string_type(table: pa.Table, string_type: pa.DataType) -> pa.Table:
    schema = pa.schema(
        [f.with_type(string_type) if pa.types.is_string(f.type) else f for f in table.schema]
    )
    return table.cast(schema)


@pytest.fixture(scope="module")
def events() -> pa.Table:
    return make_events()


@pytest.fixture(scope="module")
def matcher():
    return sigmarrow.compile(RULES)


@pytest.fixture(scope="module")
def expected(matcher, events) -> set[tuple[int, str]]:
    hits = engine_hits(matcher, events)
    # Every rule has positives, so a Spark result that drops a rule cannot pass.
    assert {rule_id for _, rule_id in hits} == RULE_IDS
    return hits


@pytest.fixture(scope="session")
def spark():
    pytest.importorskip(
        "pyspark", reason="pyspark is not installed (pip install 'sigmarrow[spark]')"
    )
    pytest.importorskip("pandas", reason="PySpark's Arrow path needs pandas installed")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime (java not on PATH, JAVA_HOME unset)")
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    os.environ.setdefault("JAVA_TOOL_OPTIONS", "-XX:-UsePerfData")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("sigmarrow-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.sql.shuffle.partitions", "2")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def events_df(spark, events):
    # Several partitions, so each Python worker runs several tasks.
    return spark.createDataFrame(events).repartition(6).cache()


def test_spark_hits_equal_engine_hits(spark, events, events_df, matcher, expected):
    import sigmarrow.spark

    # Keyword hits found only in a column no rule names: the projection must keep it.
    only_in_description = {
        (event_id, KEYWORD_RULE)
        for event_id, description in zip(
            events.column("event_id").to_pylist(),
            events.column("Description").to_pylist(),
            strict=True,
        )
        if "SEKURLSA" in description
    }
    assert only_in_description and only_in_description <= expected

    result = sigmarrow.spark.match(events_df, RULES, columns=["event_id"])
    assert result.columns == ["event_id", "rule_id", "rule_title", "level"]
    assert spark_hits(result) == expected


def test_compiled_matcher_and_rule_info(spark, events, events_df, matcher, expected):
    import sigmarrow.spark

    result = sigmarrow.spark.match(events_df, matcher, columns=["event_id", "Image"])
    rows = result.collect()
    assert {(r.event_id, r.rule_id) for r in rows} == expected
    info = {r.id: (_text(r.title), _text(r.level)) for r in matcher.rules}
    assert all((r.rule_title, r.level) == info[r.rule_id] for r in rows)
    image = dict(zip(events.column("event_id").to_pylist(), events.column("Image").to_pylist()))
    assert all(r.Image == image[r.event_id] for r in rows)


def test_default_columns_are_all_input_columns(spark, events_df, expected):
    import sigmarrow.spark

    result = sigmarrow.spark.match(events_df, RULES)
    assert result.columns == [*events_df.columns, "rule_id", "rule_title", "level"]
    assert result.schema["EventID"].dataType == events_df.schema["EventID"].dataType
    assert spark_hits(result) == expected


def test_large_var_types_from_spark(spark, events_df, expected):
    """With useLargeVarTypes Spark hands large_string instead of string."""
    import sigmarrow.spark

    key = "spark.sql.execution.arrow.useLargeVarTypes"
    before = spark.conf.get(key, None)
    spark.conf.set(key, "true")
    try:
        result = sigmarrow.spark.match(events_df, RULES, columns=["event_id"])
        assert spark_hits(result) == expected
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


@pytest.mark.parametrize("string_type", [pa.large_string(), pa.string_view()])
def test_engine_string_types_agree(matcher, events, expected, string_type):
    """Spark hands `string`; Dask `large_string`; DataFusion `string_view`."""
    assert engine_hits(matcher, with_string_type(events, string_type)) == expected


def test_rules_true_on_absent_fields_with_no_needed_column(spark, events_df):
    """No column the rules need exists and none is asked for: every row must still reach
    the engine (Spark hands a zero-column batch as zero rows)."""
    import sigmarrow.spark

    rule = textwrap.dedent(
        """
        title: Not On Absent Field
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000010
        status: test
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            NoSuchField: 'x'
          condition: not selection
        """
    )
    result = sigmarrow.spark.match(events_df, rule, columns=[])
    assert result.columns == ["rule_id", "rule_title", "level"]
    assert result.count() == N_EVENTS


def test_struct_paths(spark):
    """A dotted field with no column of that name is a path into a struct column."""
    import sigmarrow.spark

    rule = textwrap.dedent(
        r"""
        title: Evil In Struct
        id: 5bd53c3e-5e4c-4e3b-8a52-000000000011
        status: test
        logsource: {category: process_creation, product: windows}
        detection:
          selection:
            process.executable|endswith: '\evil.exe'
          condition: selection
        """
    )
    executables = [SYSTEM32 + ("evil.exe" if i % 7 == 0 else "good.exe") for i in range(200)]
    table = pa.table(
        {
            "id": pa.array(range(200), pa.int64()),
            "process": pa.StructArray.from_arrays(
                [pa.array(executables), pa.array(range(200), pa.int64())],
                names=["executable", "pid"],
            ),
            "other": pa.array(["x"] * 200),
        }
    )
    m = sigmarrow.compile(rule)
    expected = engine_hits(m, table, key="id")
    assert len(expected) == 29
    df = spark.createDataFrame(table).repartition(2)
    assert spark_hits(sigmarrow.spark.match(df, m, columns=["id"]), key="id") == expected


def test_program_loaded_once_per_worker(spark, events_df, matcher):
    """Each Python worker turns the shipped program into a matcher at most once, however
    many tasks and batches it runs."""
    import sigmarrow.spark

    df = events_df.repartition(12)
    sigmarrow.spark.match(df, matcher, columns=["event_id"]).collect()

    def probe(batches):  # nested, so cloudpickle ships it by value
        import os

        import pyarrow
        import sigmarrow.spark as worker_side

        for _ in batches:
            pass
        loads = max(worker_side._LOADS.values(), default=0)
        yield pyarrow.RecordBatch.from_pydict({"pid": [os.getpid()], "loads": [loads]})

    report = df.mapInArrow(probe, "pid long, loads long").collect()
    loads = {r.pid: r.loads for r in report}
    assert max(loads.values()) == 1, loads


def test_argument_errors(spark, events_df, matcher):
    import sigmarrow.spark

    with pytest.raises(ValueError, match="not in the DataFrame"):
        sigmarrow.spark.match(events_df, matcher, columns=["nope"])
    with pytest.raises(ValueError, match="clash"):
        sigmarrow.spark.match(events_df.withColumnRenamed("User", "level"), matcher)
    with pytest.raises(ValueError, match="pipeline"):
        sigmarrow.spark.match(events_df, matcher, pipeline="sysmon")


def _text(value):
    return None if value is None else str(value)


DOC = Path(__file__).resolve().parents[1] / "docs" / "spark.md"


def doc_example(doc: Path = DOC, marker: str = "tests/test_spark.py runs this block") -> tuple[str, str]:
    """The example of a doc (docs/spark.md) after `marker`, and the output it documents."""
    text = doc.read_text(encoding="utf-8")
    after = text.split(marker, 1)[1]
    code = after.split("```python\n", 1)[1].split("```", 1)[0]
    output = after.split("```text\n", 1)[1].split("```", 1)[0]
    return code, output


def test_doc_example_runs_as_written(spark, capsys):
    code, output = doc_example()
    capsys.readouterr()
    # The repository's own doc, run in the shared session.
    exec(compile(code, str(DOC), "exec"), {"__name__": "doc_example"})  # noqa: S102
    assert capsys.readouterr().out.strip() == output.strip()


CONNECT_SCRIPT = """
import json, os, sys
sys.path.insert(0, {tests!r})
from pyspark.sql import SparkSession
import sigmarrow, sigmarrow.spark
from test_spark import RULES, engine_hits, make_events

spark = (SparkSession.builder.remote("local[2]")
         .config("spark.ui.enabled", "false")
         .config("spark.ui.showConsoleProgress", "false")
         .config("spark.driver.host", "127.0.0.1")
         .config("spark.driver.bindAddress", "127.0.0.1")
         .config("spark.connect.grpc.binding.address", "127.0.0.1")
         .getOrCreate())
events = make_events(600)
df = spark.createDataFrame(events).repartition(3)
result = sigmarrow.spark.match(df, RULES, columns=["event_id"])
got = sorted((r["event_id"], r["rule_id"]) for r in result.collect())
expected = sorted(engine_hits(sigmarrow.compile(RULES), events))
print(json.dumps({{"session": type(spark).__module__, "got": got, "expected": expected}}))
spark.stop()
"""


def test_spark_connect(spark, tmp_path):
    """The same call through a local Spark Connect server, in a process of its own (a
    process holding a classic session cannot start a Connect one)."""
    missing = [
        m
        for m in ("grpc", "grpc_status", "google.rpc", "zstandard")
        if importlib.util.find_spec(m.split(".")[0]) is None
    ]
    if missing:
        pytest.skip(
            f"Spark Connect client not installed (pip install 'pyspark[connect]'): "
            f"missing {missing}"
        )
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", 15002))
        except OSError:
            pytest.skip("port 15002 (the local Spark Connect server's) is in use")
    script = CONNECT_SCRIPT.format(tests=str(Path(__file__).resolve().parent))
    env = {**os.environ, "PYSPARK_PYTHON": sys.executable, "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["session"].startswith("pyspark.sql.connect")
    assert report["got"] == report["expected"]
    assert len(report["expected"]) > 0
