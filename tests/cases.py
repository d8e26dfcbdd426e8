"""Engine-independent semantics cases: (rule, events, expected matching rows).

Every bullet of docs/semantics.md has cases here; tests/test_semantics.py runs each case on
the reference evaluator and on the Rust engine. A case gives the rule's `detection:` block
as YAML; `types` pins the Arrow type of some columns (the other columns are inferred by
pyarrow from the Python values), and `keyword_columns` is passed to the engine as is.

YAML reminder: inside single quotes a backslash is an ordinary character (`'a\\b'` is the
four characters a \\ \\ b, which Sigma reads as `a\\b`); only `''` is an escape.
"""

from __future__ import annotations

import base64
import datetime as dt
import textwrap
from dataclasses import dataclass, field, replace
from typing import Any

import pyarrow as pa

UTC = dt.UTC
PLUS2 = dt.timezone(dt.timedelta(hours=2))


@dataclass(frozen=True)
class Case:
    id: str
    detection: str  # the YAML of the rule's `detection:` mapping
    events: list[dict[str, Any]]
    expected: list[int]  # matching rows, ascending
    keyword_columns: list[str] | None = None
    types: dict[str, pa.DataType] = field(default_factory=dict)

    @property
    def rule_yaml(self) -> str:
        return rule_yaml(self.detection, title=self.id)


def rule_yaml(detection: str, title: str = "case", rule_id: str | None = None) -> str:
    """A complete Sigma rule around a `detection:` block."""
    body = textwrap.indent(textwrap.dedent(detection).strip("\n"), "    ")
    header = f"title: {title}\n" + (f"id: {rule_id}\n" if rule_id else "")
    return header + "logsource:\n    product: test\ndetection:\n" + body + "\n"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


CASES: list[Case] = []


def case(
    id: str,
    detection: str,
    events: list[dict[str, Any]],
    expected: list[int],
    keyword_columns: list[str] | None = None,
    types: dict[str, pa.DataType] | None = None,
) -> Case:
    c = Case(id, detection, events, expected, keyword_columns, dict(types or {}))
    CASES.append(c)
    return c


# ======================================================================== events and fields

case(
    "nested-struct-field",
    r"""
    sel:
        process.executable|endswith: '\cmd.exe'
    condition: sel
    """,
    [
        {"process": {"executable": "C:\\Windows\\System32\\cmd.exe", "pid": 4}},
        {"process": {"executable": "C:\\Windows\\notepad.exe", "pid": 5}},
        {"process": None},
        {"process": {"executable": None, "pid": 6}},
    ],
    [0],
)
case(
    "nested-struct-number-and-two-levels",
    """
    sel:
        process.pid: 4
        process.parent.name: 'Explorer.exe'
    condition: sel
    """,
    [
        {"process": {"pid": 4, "parent": {"name": "explorer.exe"}}},
        {"process": {"pid": 5, "parent": {"name": "explorer.exe"}}},
        {"process": {"pid": 4, "parent": None}},
    ],
    [0],
)
case(
    "top-level-dotted-column-wins-over-struct-path",
    """
    sel:
        process.executable: 'top'
    condition: sel
    """,
    [
        {"process.executable": "top", "process": {"executable": "nested"}},
        {"process.executable": "other", "process": {"executable": "top"}},
    ],
    [0],
)
case(
    "dotted-column-then-struct-path",
    """
    sel:
        a.b.c: 'x'
    condition: sel
    """,
    [{"a.b": {"c": "x"}}, {"a.b": {"c": "y"}}, {"a.b": None}],
    [0],
)
case(
    "nested-path-missing-child-is-absent",
    """
    sel:
        process.missing|exists: false
    other:
        process.missing: 'x'
    condition: sel and not other
    """,
    [{"process": {"executable": "a"}}, {"process": None}],
    [0, 1],
)
case(
    "missing-column-positive-test-is-false",
    """
    sel:
        Missing: 'x'
    condition: sel
    """,
    [{"Image": "x"}, {"Image": "y"}],
    [],
)
case(
    "missing-column-not-is-true",
    """
    sel:
        Missing: 'x'
    condition: not sel
    """,
    [{"Image": "x"}, {"Image": "y"}],
    [0, 1],
)
case(
    "null-value-not-is-true",
    """
    sel:
        Image: 'a'
    condition: not sel
    """,
    [{"Image": "a"}, {"Image": None}, {"Image": "b"}, {"Other": "a"}],
    [1, 2, 3],
)
case(
    "not-filter-on-missing-field-is-true",
    r"""
    selection:
        Image|endswith: '\powershell.exe'
    filter:
        ParentImage|endswith: '\explorer.exe'
    condition: selection and not filter
    """,
    [
        {"Image": "C:\\x\\powershell.exe"},
        {"Image": "C:\\x\\cmd.exe"},
        {"Image": "C:\\y\\PowerShell.EXE"},
    ],
    [0, 2],
)
case(
    "not-filter-on-null-field-is-true",
    r"""
    selection:
        Image|endswith: '\powershell.exe'
    filter:
        ParentImage|endswith: '\explorer.exe'
    condition: selection and not filter
    """,
    [
        {"Image": "C:\\x\\powershell.exe", "ParentImage": None},
        {"Image": "C:\\x\\powershell.exe", "ParentImage": "C:\\Windows\\explorer.exe"},
        {"Image": "C:\\x\\powershell.exe", "ParentImage": "C:\\Windows\\svchost.exe"},
    ],
    [0, 2],
)

# ======================================================================== strings: case

case(
    "casefold-ascii",
    r"""
    sel:
        Image: 'C:\Windows\System32\CMD.EXE'
    condition: sel
    """,
    [
        {"Image": "c:\\windows\\system32\\cmd.exe"},
        {"Image": "C:\\WINDOWS\\SYSTEM32\\CMD.EXE"},
        {"Image": "c:\\windows\\system32\\cmd.ex"},
    ],
    [0, 1],
)
case(
    "casefold-sharp-s-folds-to-ss",
    """
    sel:
        Street: 'straße'
    condition: sel
    """,
    [
        {"Street": "STRASSE"},
        {"Street": "strasse"},
        {"Street": "Straße"},
        {"Street": "STRA\u1e9eE"},  # capital sharp s
        {"Street": "strase"},
    ],
    [0, 1, 2, 3],
)
case(
    "casefold-ss-rule-matches-sharp-s-value",
    """
    sel:
        Street|endswith: 'SSE'
    condition: sel
    """,
    [{"Street": "Straße"}, {"Street": "Strase"}],
    [0],
)
case(
    "casefold-greek-sigma-forms",
    """
    sel:
        Name: 'Σίσυφος'
    condition: sel
    """,
    [
        {"Name": "ΣΊΣΥΦΟΣ"},
        {"Name": "σίσυφοσ"},
        {"Name": "ςίσυφος"},
        {"Name": "Σισυφος"},  # no accent: a different letter
    ],
    [0, 1, 2],
)
case(
    "casefold-final-sigma-in-rule",
    """
    sel:
        Name|contains: 'ς'
    condition: sel
    """,
    [{"Name": "ΟΔΥΣΣΕΥΣ"}, {"Name": "odysseus"}],
    [0],
)
case(
    "casefold-cyrillic-and-homoglyphs",
    """
    sel:
        Word: '\u041f\u0440\u0438\u0432\u0435\u0442'
    condition: sel
    """,
    [
        {"Word": "\u041f\u0420\u0418\u0412\u0415\u0422"},  # ПРИВЕТ
        {"Word": "\u043f\u0440\u0438\u0432\u0435\u0442"},  # привет
        {"Word": "P\u0440\u0438\u0432\u0435\u0442"},  # Latin P
        {"Word": "\u043fp\u0438\u0432e\u0442"},  # Latin p and e
    ],
    [0, 1],
)
case(
    "casefold-kelvin-sign",
    """
    sel:
        Unit: '\u212aelvin'
    condition: sel
    """,
    [{"Unit": "kelvin"}, {"Unit": "KELVIN"}, {"Unit": "\u212aelvin"}, {"Unit": "Celvin"}],
    [0, 1, 2],
)
case(
    "casefold-ascii-rule-matches-kelvin-sign-value",
    """
    sel:
        Unit|startswith: 'k'
    condition: sel
    """,
    [{"Unit": "\u212a"}, {"Unit": "K"}, {"Unit": "x"}],
    [0, 1],
)
case(
    "casefold-dotted-capital-i-is-two-code-points",
    """
    sel:
        Name: '\u0130'
    one:
        Name: '?'
    two:
        Name: '??'
    condition: sel and two and not one
    """,
    [{"Name": "\u0130"}, {"Name": "i"}, {"Name": "i\u0307"}, {"Name": "I"}],
    [0, 2],
)
case(
    "casefold-dotted-capital-i-does-not-equal-i",
    """
    sel:
        Name: '\u0130stanbul'
    condition: sel
    """,
    [{"Name": "istanbul"}, {"Name": "\u0130STANBUL"}, {"Name": "i\u0307stanbul"}],
    [1, 2],
)
case(
    "emoji-contains",
    """
    sel:
        Msg|contains: '🔥x'
    condition: sel
    """,
    [{"Msg": "a🔥Xb"}, {"Msg": "a🔥b"}, {"Msg": "🔥x"}],
    [0, 2],
)
case(
    "cased-exact",
    """
    sel:
        Name|cased: 'CmD.exe'
    condition: sel
    """,
    [{"Name": "CmD.exe"}, {"Name": "cmd.exe"}, {"Name": "CMD.EXE"}],
    [0],
)
case(
    "cased-contains-and-unicode",
    """
    sel:
        Name|contains|cased: 'Straße'
    condition: sel
    """,
    [{"Name": "x Straße y"}, {"Name": "x STRASSE y"}, {"Name": "x strasse y"}],
    [0],
)
case(
    "cased-kelvin-sign-is-not-k",
    """
    sel:
        Unit|cased: '\u212aelvin'
    condition: sel
    """,
    [{"Unit": "Kelvin"}, {"Unit": "\u212aelvin"}],
    [1],
)
case(
    # The Cloudflared shape: a short table of ASCII anchored literals (tested on the
    # value's bytes) and a filter only under `not` (tested only where the selection hit).
    "anchored-selection-and-lazy-filter",
    """
    selection:
        Image|endswith: '\\cloudflared.exe'
    filter:
        Image|contains: ':\\Program Files\\cloudflared\\'
    condition: selection and not filter
    """,
    [
        {"Image": "C:\\Tools\\CloudFlared.EXE"},
        {"Image": "C:\\Program Files\\Cloudflared\\cloudflared.exe"},
        {"Image": "C:\\Tools\\cloudflared.\u212aexe"},
        {"Image": "C:\\Tools\\clou\u212adflared.exe"},
        {"Image": "C:\\Tools\\Cloudflar\u00e9d.exe"},
        {"Image": None},
        {"Image": "\u00c9\\CLOUDFLARED.exe"},
        {"Image": "cloudflared.exe"},
        {"Image": "C:\\PROGRAM FILE\u017f\\CLOUDFLARED\\cloudflared.exe"},
    ],
    [0, 6],
)
case(
    # pySigma drops `cased` when `windash` comes after it (windash rebuilds plain strings):
    # pySigma's parse is the source of truth, so this compares case-insensitively.
    "cased-then-windash-is-case-insensitive-in-pysigma",
    """
    sel:
        Cmd|cased|windash|contains: '-Enc'
    condition: sel
    """,
    [{"Cmd": "x -enc"}, {"Cmd": "x /Enc"}],
    [0, 1],
)
case(
    "windash-then-cased-stays-cased",
    """
    sel:
        Cmd|windash|contains|cased: '-Enc'
    condition: sel
    """,
    [{"Cmd": "x -enc"}, {"Cmd": "x /Enc"}],
    [1],
)

# ======================================================================== strings: globs

case(
    "glob-star-in-the-middle",
    r"""
    sel:
        Image: 'C:\\*\cmd.exe'
    condition: sel
    """,
    [
        {"Image": "C:\\Windows\\System32\\cmd.exe"},
        {"Image": "C:\\\\cmd.exe"},
        {"Image": "C:\\cmd.exe"},
        {"Image": "D:\\x\\cmd.exe"},
    ],
    [0, 1],
)
case(
    "glob-question-marks-count-characters",
    r"""
    sel:
        Image|endswith: '\\??????.exe'
    condition: sel
    """,
    [
        {"Image": "C:\\abcdef.exe"},
        {"Image": "C:\\abcde.exe"},
        {"Image": "C:\\abcdefg.exe"},
        {"Image": "C:\\ab🔥def.exe"},
        {"Image": "C:\\______.exe"},
    ],
    [0, 3, 4],
)
_QUESTION_MARK_EVENTS = [
    {"Name": "a🔥b"},  # one scalar value (two UTF-16 units, four UTF-8 bytes)
    {"Name": "aßb"},  # ß folds to ss: two characters
    {"Name": "a\u00e9b"},  # precomposed é
    {"Name": "ae\u0301b"},  # e + combining acute: two
    {"Name": "ab"},
]
case(
    "glob-question-mark-is-one-code-point-of-the-folded-value",
    """
    sel:
        Name: 'a?b'
    condition: sel
    """,
    _QUESTION_MARK_EVENTS,
    [0, 2],
)
case(
    "glob-two-question-marks-match-sharp-s-and-combining-marks",
    """
    sel:
        Name: 'a??b'
    condition: sel
    """,
    _QUESTION_MARK_EVENTS,
    [1, 3],
)
case(
    "cased-question-mark-sees-sharp-s-as-one",
    """
    sel:
        Name|cased: 'a?b'
    condition: sel
    """,
    _QUESTION_MARK_EVENTS,
    [0, 1, 2],
)
case(
    "backslash-star-is-an-escaped-star",
    r"""
    sel:
        Image: 'C:\*\cmd.exe'
    condition: sel
    """,
    [{"Image": "C:*\\cmd.exe"}, {"Image": "C:\\x\\cmd.exe"}, {"Image": "C:\\*\\cmd.exe"}],
    [0],
)
case(
    "glob-star-crosses-line-breaks",
    """
    sel:
        Script: 'begin*end'
    condition: sel
    """,
    [{"Script": "begin\nmiddle\r\nend"}, {"Script": "beginend"}, {"Script": "begin\nen"}],
    [0, 1],
)
case(
    "glob-backtracking",
    """
    sel:
        Value: '*a*ab?'
    condition: sel
    """,
    [{"Value": "aaaaabc"}, {"Value": "aabx"}, {"Value": "abab"}, {"Value": "ab"}],
    [0, 1],
)
case(
    "glob-star-alone-matches-empty-but-not-absent",
    """
    sel:
        Value: '*'
    condition: sel
    """,
    [{"Value": ""}, {"Value": "x"}, {"Value": None}, {"Other": "x"}],
    [0, 1],
)
case(
    "glob-question-mark-alone",
    """
    sel:
        Value: '?'
    condition: sel
    """,
    [{"Value": ""}, {"Value": "x"}, {"Value": "xy"}, {"Value": "\n"}],
    [1, 3],
)
case(
    "escape-star-is-literal",
    r"""
    sel:
        Value: 'a\*b'
    condition: sel
    """,
    [{"Value": "a*b"}, {"Value": "axb"}, {"Value": "a\\*b"}, {"Value": "a\\xb"}],
    [0],
)
case(
    "escape-question-mark-is-literal",
    r"""
    sel:
        Value|endswith: 'why\?'
    condition: sel
    """,
    [{"Value": "but why?"}, {"Value": "but whyX"}, {"Value": "but why\\?"}],
    [0],
)
case(
    "escaped-backslash-before-star-is-backslash-then-wildcard",
    r"""
    sel:
        Value: 'C:\\*'
    condition: sel
    """,
    [{"Value": "C:\\Windows"}, {"Value": "C:\\"}, {"Value": "C:Windows"}, {"Value": "C:\\*"}],
    [0, 1, 3],
)
case(
    "backslash-before-ordinary-character-stays",
    r"""
    sel:
        Value: 'C:\Windows\Temp\'
    condition: sel
    """,
    [{"Value": "C:\\Windows\\Temp\\"}, {"Value": "C:\\Windows\\Temp"}],
    [0],
)
case(
    "double-backslash-alone-is-one-backslash",
    r"""
    sel:
        Value: 'a\\b'
    condition: sel
    """,
    [{"Value": "a\\b"}, {"Value": "a\\\\b"}],
    [0],
)
case(
    "escaped-backslash-then-escaped-star",
    r"""
    sel:
        Value: 'a\\\*'
    condition: sel
    """,
    [{"Value": "a\\*"}, {"Value": "a\\x"}, {"Value": "a*"}],
    [0],
)
case(
    "percent-and-underscore-are-not-wildcards",
    """
    sel:
        Value: '%APPDATA%\\______.exe'
    condition: sel
    """,
    [
        {"Value": "%appdata%\\______.exe"},
        {"Value": "C:\\Users\\x\\abcdef.exe"},
        {"Value": "%APPDATA%\\abcdef.exe"},
    ],
    [0],
)

# ======================================================================== strings: shape

case(
    "plain-value-matches-whole-value",
    """
    sel:
        Image: 'cmd.exe'
    condition: sel
    """,
    [{"Image": "cmd.exe"}, {"Image": "xcmd.exe"}, {"Image": "cmd.exex"}],
    [0],
)
case(
    "contains-startswith-endswith",
    """
    c:
        Value|contains: 'mid'
    s:
        Value|startswith: 'sta'
    e:
        Value|endswith: 'end'
    condition: c and s and e
    """,
    [
        {"Value": "start mid end"},
        {"Value": "STA-MID-END"},
        {"Value": "start end"},
        {"Value": "mid start end"},
        {"Value": "start mid end."},
    ],
    [0, 1],
)
case(
    "contains-all-keeps-spaces",
    """
    sel:
        CommandLine|contains|all:
            - 'tcp '
            - ' -p'
    condition: sel
    """,
    [
        {"CommandLine": "netsh tcp x -p 80"},
        {"CommandLine": "netsh tcp"},
        {"CommandLine": "netsh tcp; x-p"},
        {"CommandLine": "netsh tcpx -p"},
    ],
    [0],
)
case(
    "leading-and-trailing-spaces-are-significant",
    """
    sel:
        CommandLine|contains: ' -enc '
    condition: sel
    """,
    [
        {"CommandLine": "powershell -enc AAAA"},
        {"CommandLine": "powershell -encodedcommand AAAA"},
        {"CommandLine": "powershell -enc"},
        {"CommandLine": "powershell\t-enc AAAA"},
    ],
    [0],
)
case(
    "trailing-space-in-plain-value",
    """
    sel:
        Value: 'abc '
    condition: sel
    """,
    [{"Value": "abc "}, {"Value": "abc"}, {"Value": " abc "}, {"Value": "ABC "}],
    [0, 3],
)
case(
    "empty-string-matches-only-empty",
    """
    sel:
        Value: ''
    condition: sel
    """,
    [{"Value": ""}, {"Value": " "}, {"Value": None}, {"Other": "x"}, {"Value": "x"}],
    [0],
)
case(
    "null-matches-only-absent",
    """
    sel:
        Value: null
    condition: sel
    """,
    [{"Value": None}, {"Value": ""}, {"Other": "x"}, {"Value": "x"}, {"Value": "null"}],
    [0, 2],
)
case(
    "null-on-missing-column-matches-every-row",
    """
    sel:
        Missing: null
    condition: sel
    """,
    [{"Value": "x"}, {"Value": None}],
    [0, 1],
)
case(
    "empty-string-on-missing-column-matches-nothing",
    """
    sel:
        Missing: ''
    condition: sel
    """,
    [{"Value": "x"}, {"Value": ""}],
    [],
)
case(
    "null-in-a-list",
    """
    sel:
        Value:
            - null
            - 'x'
    condition: sel
    """,
    [{"Value": None}, {"Value": ""}, {"Value": "X"}, {"Value": "y"}],
    [0, 2],
)
case(
    "integer-column-matched-by-string-value",
    """
    sel:
        EventID: '4688'
    condition: sel
    """,
    [{"EventID": 4688}, {"EventID": 46880}, {"EventID": 468}],
    [0],
)
case(
    "integer-as-decimal-text-for-string-tests",
    """
    a:
        EventID|startswith: '46'
    b:
        EventID|endswith: '-5'
    c:
        EventID: '04688'
    condition: a or b or c
    """,
    [{"EventID": 4688}, {"EventID": -5}, {"EventID": 5}, {"EventID": 1046}],
    [0, 1],
)
case(
    "boolean-as-text-for-string-tests",
    """
    sel:
        Flag: 'TRUE'
    condition: sel
    """,
    [{"Flag": True}, {"Flag": False}],
    [0],
)
case(
    "boolean-false-as-text-with-wildcard",
    """
    sel:
        Flag: 'f*e'
    condition: sel
    """,
    [{"Flag": True}, {"Flag": False}],
    [1],
)
case(
    "float-is-not-text",
    """
    sel:
        Value|contains: '1'
    exact:
        Value: '1.5'
    condition: sel or exact
    """,
    [{"Value": 1.5}, {"Value": 10.0}, {"Value": 2.0}],
    [],
)
case(
    "timestamp-is-not-text",
    """
    sel:
        Time|contains: '2024'
    condition: sel
    """,
    [{"Time": dt.datetime(2024, 1, 2, 3, 4, 5)}],
    [],
)
case(
    "date-is-not-text",
    """
    sel:
        Day|startswith: '2024'
    condition: sel
    """,
    [{"Day": dt.date(2024, 1, 2)}],
    [],
)

# ======================================================================== lists, maps, conditions

case(
    "list-is-or",
    """
    sel:
        Image|endswith:
            - '\\cmd.exe'
            - '\\powershell.exe'
    condition: sel
    """,
    [{"Image": "C:\\cmd.exe"}, {"Image": "C:\\powershell.exe"}, {"Image": "C:\\pwsh.exe"}],
    [0, 1],
)
case(
    "list-with-all-is-and",
    """
    sel:
        CommandLine|contains|all:
            - 'a'
            - 'b'
            - 'c'
    condition: sel
    """,
    [{"CommandLine": "cab"}, {"CommandLine": "ab"}, {"CommandLine": "xcxbxa"}],
    [0, 2],
)
case(
    "map-is-and",
    """
    sel:
        Image|endswith: '\\cmd.exe'
        User: 'SYSTEM'
    condition: sel
    """,
    [
        {"Image": "C:\\cmd.exe", "User": "system"},
        {"Image": "C:\\cmd.exe", "User": "admin"},
        {"Image": "C:\\x.exe", "User": "system"},
        {"Image": "C:\\cmd.exe", "User": None},
    ],
    [0],
)
case(
    "list-of-maps-is-or",
    """
    sel:
        - Image|endswith: '\\cmd.exe'
          User: 'SYSTEM'
        - Image|endswith: '\\powershell.exe'
    condition: sel
    """,
    [
        {"Image": "C:\\cmd.exe", "User": "system"},
        {"Image": "C:\\cmd.exe", "User": "admin"},
        {"Image": "C:\\powershell.exe", "User": "admin"},
        {"Image": "C:\\x.exe", "User": "system"},
    ],
    [0, 2],
)
case(
    "one-of-pattern",
    """
    sel_a:
        A: 'x'
    sel_b:
        B: 'x'
    other:
        C: 'x'
    condition: 1 of sel_*
    """,
    [{"A": "x", "B": "y", "C": "y"}, {"A": "y", "B": "x", "C": "y"}, {"A": "y", "B": "y", "C": "x"}],
    [0, 1],
)
case(
    "any-of-pattern",
    """
    sel1:
        A: 'x'
    sel2:
        B: 'x'
    condition: any of sel*
    """,
    [{"A": "x", "B": "y"}, {"A": "y", "B": "y"}],
    [0],
)
case(
    "all-of-pattern",
    """
    sel_a:
        A: 'x'
    sel_b:
        B: 'x'
    other:
        C: 'x'
    condition: all of sel_*
    """,
    [{"A": "x", "B": "x", "C": "y"}, {"A": "x", "B": "y", "C": "x"}],
    [0],
)
case(
    "all-of-them",
    """
    one:
        A: 'x'
    two:
        B|contains: 'x'
    condition: all of them
    """,
    [{"A": "x", "B": "axb"}, {"A": "x", "B": "ab"}, {"A": "y", "B": "x"}],
    [0],
)
case(
    "one-of-them",
    """
    one:
        A: 'x'
    two:
        B: 'x'
    condition: 1 of them
    """,
    [{"A": "x", "B": "y"}, {"A": "y", "B": "x"}, {"A": "y", "B": "y"}],
    [0, 1],
)
case(
    "all-of-pattern-and-not-one-of-filters",
    """
    sel_img:
        Image|endswith: '.exe'
    sel_cmd:
        CommandLine|contains: 'evil'
    filter_a:
        User: 'admin'
    filter_b:
        User: 'root'
    condition: all of sel_* and not 1 of filter_*
    """,
    [
        {"Image": "a.exe", "CommandLine": "evil", "User": "bob"},
        {"Image": "a.exe", "CommandLine": "evil", "User": "root"},
        {"Image": "a.exe", "CommandLine": "good", "User": "bob"},
        {"Image": "a.exe", "CommandLine": "evil", "User": None},
    ],
    [0, 3],
)
case(
    "not-binds-tighter-than-and-tighter-than-or",
    """
    a:
        A: 'x'
    b:
        B: 'x'
    c:
        C: 'x'
    condition: a or b and not c
    """,
    [
        {"A": "x", "B": "x", "C": "x"},  # a
        {"A": "y", "B": "x", "C": "y"},  # b and not c
        {"A": "y", "B": "x", "C": "x"},
        {"A": "y", "B": "y", "C": "y"},
    ],
    [0, 1],
)
case(
    "parentheses",
    """
    a:
        A: 'x'
    b:
        B: 'x'
    c:
        C: 'x'
    condition: (a or b) and not c
    """,
    [
        {"A": "x", "B": "x", "C": "x"},
        {"A": "y", "B": "x", "C": "y"},
        {"A": "x", "B": "y", "C": "y"},
        {"A": "y", "B": "y", "C": "y"},
    ],
    [1, 2],
)
case(
    "not-of-a-group",
    """
    a:
        A: 'x'
    b:
        B: 'x'
    condition: not (a or b)
    """,
    [{"A": "x", "B": "y"}, {"A": "y", "B": "y"}, {"A": None, "B": None}],
    [1, 2],
)
case(
    "several-conditions-any-matches",
    """
    a:
        A: 'x'
    b:
        B: 'x'
    condition:
        - a
        - b
    """,
    [{"A": "x", "B": "y"}, {"A": "y", "B": "x"}, {"A": "y", "B": "y"}],
    [0, 1],
)

# ======================================================================== keywords

case(
    "keywords-default-all-string-columns",
    """
    keywords:
        - 'evil'
        - '*bad*'
    condition: keywords
    """,
    [
        {"A": "EVIL", "B": "x", "N": 1},
        {"A": "x", "B": "so bad", "N": 2},
        {"A": "x evil", "B": "x", "N": 3},
        {"A": "x", "B": None, "N": 4},
    ],
    [0, 1, 2],
)
case(
    "keywords-ignore-non-string-columns-by-default",
    """
    keywords:
        - '4688'
        - 'true'
    condition: keywords
    """,
    [{"A": "x", "N": 4688, "F": True}, {"A": "4688", "N": 1, "F": False}],
    [1],
)
case(
    "keywords-do-not-search-struct-children-by-default",
    """
    keywords:
        - 'evil'
    condition: keywords
    """,
    [{"A": "x", "process": {"name": "evil"}}, {"A": "evil", "process": {"name": "x"}}],
    [1],
)
case(
    "keywords-explicit-columns",
    """
    keywords:
        - '*evil*'
    condition: keywords
    """,
    [
        {"CommandLine": "x evil", "User": "x"},
        {"CommandLine": "x", "User": "evil"},
        {"CommandLine": None, "User": "evil"},
    ],
    [0],
    keyword_columns=["CommandLine"],
)
case(
    "keywords-explicit-integer-column-as-text",
    """
    keywords:
        - 4688
    condition: keywords
    """,
    [{"EventID": 4688, "Msg": "x"}, {"EventID": 1, "Msg": "4688"}, {"EventID": 46880, "Msg": "x"}],
    [0, 2],
    keyword_columns=["EventID"],
)
case(
    "keywords-numeric-keyword-is-searched-as-decimal-text",
    """
    keywords:
        - 4688
    condition: keywords
    """,
    [{"Msg": "4688"}, {"Msg": "04688"}, {"Msg": "4688.0"}, {"Msg": "x4688"}, {"Msg": "468 8"}],
    [0, 1, 2, 3],
)
case(
    "keyword-is-searched-within-each-value",
    r"""
    keywords:
        - 'mimidrv.sys'
        - 'Install-TransportAgent'
    condition: keywords
    """,
    [
        {"Path": "C:\\Users\\x\\mimidrv.sys", "Msg": None},
        {"Path": None, "Msg": 'Install-TransportAgent -Name "Evil" -TransportAgentFactory x'},
        {"Path": "mimidrv.sy", "Msg": "s"},
        {"Path": "MIMIDRV.SYS.bak", "Msg": ""},
    ],
    [0, 1, 3],
)
case(
    "keyword-wildcards-inside-are-kept",
    r"""
    keywords:
        - 'mimi*.dll'
        - 'a?c'
    condition: keywords
    """,
    [{"A": "x\\mimispool.dll y"}, {"A": "mimi.dl"}, {"A": "xxABCxx"}, {"A": "ac"}],
    [0, 2],
)
case(
    "keyword-escaped-star-is-a-literal-star-searched",
    r"""
    keywords:
        - 'a\*b'
    condition: keywords
    """,
    [{"A": "xa*by"}, {"A": "axxb"}],
    [0],
)
case(
    "keyword-does-not-span-two-columns",
    """
    keywords:
        - 'foo bar'
    condition: keywords
    """,
    [{"A": "foo", "B": "bar"}, {"A": "x", "B": "a foo bar"}, {"A": "foo ", "B": " bar"}],
    [1],
)
case(
    "keyword-cased-searched-with-case",
    """
    keywords:
        '|cased': 'Evil'
    condition: keywords
    """,
    [{"A": "so Evil"}, {"A": "so evil"}],
    [0],
)
case(
    "keyword-and-not-field-filter",
    """
    keywords:
        - 'sekurlsa::'
    filter:
        EventID: 15
    condition: keywords and not filter
    """,
    [{"EventID": 1, "CommandLine": "m.exe sekurlsa::logonpasswords"}, {"EventID": 15, "CommandLine": "sekurlsa::"},
     {"EventID": 1, "CommandLine": "x"}],
    [0],
)
case(
    "keywords-with-modifier",
    """
    keywords:
        '|contains': 'Evil'
    condition: keywords
    """,
    [{"A": "x evil y", "B": "x"}, {"A": "x", "B": "EVIL"}, {"A": "x", "B": "y"}],
    [0, 1],
)
case(
    "keywords-and-field-selection",
    """
    keywords:
        - '*mimikatz*'
    sel:
        User: 'admin'
    condition: keywords and not sel
    """,
    [
        {"CommandLine": "run mimikatz", "User": "bob"},
        {"CommandLine": "run mimikatz", "User": "admin"},
        {"CommandLine": "run x", "User": "bob"},
    ],
    [0],
)
case(
    "keywords-casefold-unicode",
    """
    keywords:
        - '*STRA\u1e9eE*'
    condition: keywords
    """,
    [{"A": "in der strasse"}, {"A": "in der Straße"}, {"A": "in der Strase"}],
    [0, 1],
)

# ======================================================================== modifiers: encodings

case(
    "windash",
    """
    sel:
        CommandLine|windash|contains: ' -enc '
    condition: sel
    """,
    [
        {"CommandLine": "powershell -enc AA"},
        {"CommandLine": "powershell /enc AA"},
        {"CommandLine": "powershell \u2013enc AA"},  # en dash
        {"CommandLine": "powershell \u2014enc AA"},  # em dash
        {"CommandLine": "powershell \u2015enc AA"},  # horizontal bar
        {"CommandLine": "powershell _enc AA"},
        {"CommandLine": "powershell -ENC AA"},
    ],
    [0, 1, 2, 3, 4, 6],
)
case(
    "windash-only-at-word-start",
    """
    sel:
        CommandLine|windash: '-a-b'
    condition: sel
    """,
    [{"CommandLine": "-a-b"}, {"CommandLine": "/a-b"}, {"CommandLine": "/a/b"}, {"CommandLine": "–a-b"}],
    [0, 1, 3],
)
case(
    "base64-exact-and-case-insensitive",
    """
    sel:
        Value|base64: 'abc'
    condition: sel
    """,
    [{"Value": "YWJj"}, {"Value": "ywjj"}, {"Value": "YWJjZA=="}],
    [0, 1],
)
case(
    "base64-contains",
    """
    sel:
        Value|base64|contains: 'http://'
    condition: sel
    """,
    [{"Value": "x" + b64(b"http://") + "y"}, {"Value": b64(b"https://")}],
    [0],
)
case(
    "base64offset-contains",
    """
    sel:
        CommandLine|base64offset|contains: 'http://'
    condition: sel
    """,
    [
        {"CommandLine": "powershell -e " + b64(b"http://evil")},
        {"CommandLine": "powershell -e " + b64(b"Xhttp://evil")},
        {"CommandLine": "powershell -e " + b64(b"XYhttp://evil")},
        {"CommandLine": "powershell -e " + b64(b"XYZhttp://evil")},
        {"CommandLine": "powershell -e " + b64(b"ftp://evil")},
    ],
    [0, 1, 2, 3],
)
case(
    "wide-base64offset-contains",
    """
    sel:
        CommandLine|wide|base64offset|contains: 'ping'
    condition: sel
    """,
    [
        {"CommandLine": b64("cmd /c ping x".encode("utf-16le"))},
        {"CommandLine": b64("ping".encode("utf-16le"))},
        {"CommandLine": b64("xxping".encode("utf-16le"))},
        {"CommandLine": b64(b"ping")},
        {"CommandLine": b64("pong".encode("utf-16le"))},
    ],
    [0, 1, 2],
)
case(
    "utf16be-base64offset-contains",
    """
    sel:
        CommandLine|utf16be|base64offset|contains: 'ping'
    condition: sel
    """,
    [
        {"CommandLine": b64("a ping b".encode("utf-16be"))},
        {"CommandLine": b64(b"a ping b")},
    ],
    [0],
)
case(
    # pySigma's utf16 puts the BOM in as the character U+FEFF, which base64 then encodes as
    # UTF-8 (EF BB BF), not as the UTF-16 BOM (FF FE); and base64offset trims by characters,
    # not bytes, so the offset-0 variant keeps its `=` padding. pySigma's parse is the truth.
    "utf16-base64offset-contains-as-pysigma-encodes-it",
    """
    sel:
        CommandLine|utf16|base64offset|contains: 'ping'
    condition: sel
    """,
    [
        {"CommandLine": "x" + b64("\ufeff".encode() + "ping".encode("utf-16le"))},
        {"CommandLine": b64("ping x".encode("utf-16le"))},
        {"CommandLine": b64("ping x".encode("utf-16"))},  # real UTF-16 with BOM FF FE
    ],
    [0],
)
case(
    "wide-without-base64-has-nul-characters",
    """
    sel:
        Blob|wide|contains: 'ab'
    condition: sel
    """,
    [{"Blob": "xa\x00b\x00y"}, {"Blob": "xaby"}, {"Blob": "xA\x00B\x00"}],
    [0, 2],
)

# ======================================================================== modifiers: re

case(
    "re-unanchored-search-case-sensitive",
    """
    sel:
        CommandLine|re: 'fo+bar'
    condition: sel
    """,
    [{"CommandLine": "x foooobar y"}, {"CommandLine": "FOOBAR"}, {"CommandLine": "fbar"}],
    [0],
)
case(
    "re-ignorecase",
    """
    sel:
        CommandLine|re|i: 'fo+bar'
    condition: sel
    """,
    [{"CommandLine": "x foooobar y"}, {"CommandLine": "FOOBAR"}, {"CommandLine": "fbar"}],
    [0, 1],
)
case(
    "re-inline-ignorecase",
    """
    sel:
        CommandLine|re: '(?i)^powershell'
    condition: sel
    """,
    [{"CommandLine": "PowerShell -x"}, {"CommandLine": "x powershell"}],
    [0],
)
case(
    "re-multiline",
    """
    sel:
        Script|re|m: '^second$'
    condition: sel
    """,
    [{"Script": "first\nsecond\nthird"}, {"Script": "first second"}, {"Script": "second"}],
    [0, 2],
)
case(
    "re-without-multiline-anchors-whole-value",
    """
    sel:
        Script|re: '^second$'
    condition: sel
    """,
    [{"Script": "first\nsecond\nthird"}, {"Script": "second"}],
    [1],
)
case(
    "re-dollar-does-not-match-before-final-newline",
    """
    sel:
        Script|re: 'end$'
    condition: sel
    """,
    [{"Script": "the end"}, {"Script": "the end\n"}],
    [0],
)
case(
    "re-dotall",
    """
    dotall:
        Script|re|s: 'begin.*end'
    condition: dotall
    """,
    [{"Script": "begin\nend"}, {"Script": "begin end"}, {"Script": "end begin"}],
    [0, 1],
)
case(
    "re-dot-without-dotall-stops-at-newline",
    """
    sel:
        Script|re: 'begin.*end'
    condition: sel
    """,
    [{"Script": "begin\nend"}, {"Script": "begin end"}],
    [1],
)
case(
    "re-with-escapes",
    r"""
    ip:
        Value|re: '^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$'
    path:
        Value|re: '^C:\\Windows\\[^\\]+\.exe$'
    condition: ip or path
    """,
    [
        {"Value": "10.1.2.3"},
        {"Value": "10x1.2.3"},
        {"Value": "C:\\Windows\\cmd.exe"},
        {"Value": "C:\\Windows\\x\\cmd.exe"},
        {"Value": "C:/Windows/cmd.exe"},
    ],
    [0, 2],
)
case(
    "re-with-star-and-question-mark",
    """
    sel:
        Value|re: 'ab*c?d'
    condition: sel
    """,
    [{"Value": "xad"}, {"Value": "abbbcd"}, {"Value": "ab*c?d"}, {"Value": "axd"}],
    [0, 1],
)
case(
    "re-sees-integers-and-booleans-as-text",
    """
    num:
        EventID|re: '^46\\d\\d$'
    flag:
        Flag|re: '^true$'
    condition: num or flag
    """,
    [
        {"EventID": 4688, "Flag": False},
        {"EventID": 4788, "Flag": True},
        {"EventID": 468, "Flag": False},
    ],
    [0, 1],
)
case(
    "re-does-not-see-floats",
    """
    sel:
        Value|re: '1'
    condition: sel
    """,
    [{"Value": 1.0}, {"Value": 11.5}],
    [],
)
case(
    "re-contains-modifier",
    """
    sel:
        Value|re|contains: 'b+'
    condition: sel
    """,
    [{"Value": "abbc"}, {"Value": "ac"}],
    [0],
)

# ======================================================================== modifiers: cidr

case(
    "cidr-ipv4",
    """
    sel:
        SourceIp|cidr: '10.0.0.0/8'
    condition: sel
    """,
    [
        {"SourceIp": "10.1.2.3"},
        {"SourceIp": "11.0.0.1"},
        {"SourceIp": " 10.1.2.3"},
        {"SourceIp": "10.1.2.3 "},
        {"SourceIp": "10.1.2.3:80"},
        {"SourceIp": "::ffff:10.1.2.3"},
        {"SourceIp": "10.255.255.255"},
        {"SourceIp": "not an ip"},
        {"SourceIp": None},
    ],
    [0, 6],
)
case(
    "cidr-ipv4-list-and-small-prefix",
    """
    sel:
        DestinationIp|cidr:
            - '192.168.1.0/25'
            - '172.16.0.0/12'
    condition: sel
    """,
    [
        {"DestinationIp": "192.168.1.127"},
        {"DestinationIp": "192.168.1.128"},
        {"DestinationIp": "172.31.255.1"},
        {"DestinationIp": "172.32.0.1"},
    ],
    [0, 2],
)
case(
    "cidr-ipv6",
    """
    sel:
        SourceIp|cidr: '2001:db8::/32'
    condition: sel
    """,
    [
        {"SourceIp": "2001:db8::1"},
        {"SourceIp": "2001:DB8:0:0:0:0:0:5"},
        {"SourceIp": "2001:db9::1"},
        {"SourceIp": "10.0.0.1"},
        {"SourceIp": "2001:db8::1 "},
    ],
    [0, 1],
)
case(
    "cidr-ipv6-loopback-not-in-ipv4-network",
    """
    v4:
        Ip|cidr: '127.0.0.0/8'
    v6:
        Ip|cidr: '::1/128'
    condition: v4 or v6
    """,
    [{"Ip": "::1"}, {"Ip": "127.0.0.1"}, {"Ip": "::2"}, {"Ip": "::ffff:127.0.0.1"}],
    [0, 1],
)
case(
    "cidr-integer-value-is-not-an-address",
    """
    sel:
        Ip|cidr: '0.0.0.0/0'
    condition: sel
    """,
    [{"Ip": 167772161}, {"Ip": 0}],
    [],
)

# ======================================================================== modifiers: numbers

case(
    "number-equals-integer-column",
    """
    sel:
        EventID: 4688
    condition: sel
    """,
    [{"EventID": 4688}, {"EventID": 4689}, {"EventID": None}],
    [0],
)
case(
    "number-equals-string-column",
    """
    sel:
        EventID: 4688
    condition: sel
    """,
    [
        {"EventID": "4688"},
        {"EventID": "04688"},
        {"EventID": "4688.0"},
        {"EventID": "+4688"},
        {"EventID": "4.688e3"},
        {"EventID": " 4688"},
        {"EventID": "4688 "},
        {"EventID": "0x1250"},
        {"EventID": "4688x"},
        {"EventID": "٤٦٨٨"},  # Arabic-Indic digits are not a decimal literal
    ],
    [0, 1, 2, 3, 4],
)
case(
    "number-equals-float-column",
    """
    sel:
        Value: 4688
    frac:
        Value: 1.5
    condition: sel or frac
    """,
    [{"Value": 4688.0}, {"Value": 4688.5}, {"Value": 1.5}],
    [0, 2],
)
case(
    "number-does-not-equal-boolean",
    """
    one:
        Flag: 1
    zero:
        Flag: 0
    condition: one or zero
    """,
    [{"Flag": True}, {"Flag": False}],
    [],
)
case(
    "negative-number",
    """
    sel:
        Delta: -3
    condition: sel
    """,
    [{"Delta": -3}, {"Delta": 3}],
    [0],
)
case(
    "gt-gte-lt-lte-integer-column",
    """
    gt:
        Count|gt: 10
    lte:
        Count|lte: 2
    condition: gt or lte
    """,
    [{"Count": 11}, {"Count": 10}, {"Count": 2}, {"Count": 3}, {"Count": -5}, {"Count": None}],
    [0, 2, 4],
)
case(
    "gte-and-lt-together",
    """
    sel:
        Count|gte: 10
        Count|lt: 20
    condition: sel
    """,
    [{"Count": 9}, {"Count": 10}, {"Count": 19}, {"Count": 20}],
    [1, 2],
)
case(
    "gt-float-column-and-float-bound",
    """
    sel:
        Value|gt: 1.5
    condition: sel
    """,
    [{"Value": 1.5}, {"Value": 1.50001}, {"Value": -2.0}, {"Value": float("nan")}],
    [1],
)
case(
    "gt-string-column-decimal-literals",
    """
    sel:
        Value|gt: 5
    condition: sel
    """,
    [
        {"Value": "15"},
        {"Value": "1e1"},
        {"Value": "+6"},
        {"Value": "5."},
        {"Value": ".5"},
        {"Value": "5.5"},
        {"Value": " 15"},
        {"Value": "0x10"},
        {"Value": "15abc"},
        {"Value": "inf"},
        {"Value": "NaN"},
        {"Value": "1e"},
        {"Value": ""},
    ],
    [0, 1, 2, 5],
)
case(
    "lt-on-boolean-is-false",
    """
    sel:
        Flag|lt: 5
    condition: sel
    """,
    [{"Flag": True}, {"Flag": False}],
    [],
)
case(
    "neq-is-not-and-true-for-absent",
    """
    sel:
        EventID|neq: 4688
    condition: sel
    """,
    [{"EventID": 4688}, {"EventID": 1}, {"EventID": None}, {"Other": 1}],
    [1, 2, 3],
)
case(
    "neq-on-string-column",
    """
    sel:
        Status|neq: 'ok'
    condition: sel
    """,
    [{"Status": "OK"}, {"Status": "failed"}, {"Status": None}],
    [1, 2],
)
case(
    "boolean-column-and-strings",
    """
    sel:
        Enabled: true
    condition: sel
    """,
    [{"Enabled": True}, {"Enabled": False}, {"Enabled": None}],
    [0],
)
case(
    "boolean-rule-on-string-values",
    """
    sel:
        Enabled: false
    condition: sel
    """,
    [
        {"Enabled": "false"},
        {"Enabled": "FALSE"},
        {"Enabled": "False"},
        {"Enabled": "true"},
        {"Enabled": "0"},
        {"Enabled": "no"},
        {"Enabled": " false"},
    ],
    [0, 1, 2],
)
case(
    "boolean-rule-on-integer-column-is-false",
    """
    sel:
        Enabled: true
    condition: sel
    """,
    [{"Enabled": 1}, {"Enabled": 0}],
    [],
)
case(
    "boolean-rule-on-string-values-ignores-case-by-full-folding",
    """
    sel:
        Enabled: false
    condition: sel
    """,
    [{"Enabled": "fal\u017fe"}, {"Enabled": "FALSE"}],  # long s folds to s
    [0, 1],
)

# ======================================================================== modifiers: exists

case(
    "exists-true",
    """
    sel:
        Value|exists: true
    condition: sel
    """,
    [{"Value": "x"}, {"Value": ""}, {"Value": None}, {"Other": "x"}],
    [0, 1],
)
case(
    "exists-false",
    """
    sel:
        Value|exists: false
    condition: sel
    """,
    [{"Value": "x"}, {"Value": ""}, {"Value": None}, {"Other": "x"}],
    [2, 3],
)
case(
    "exists-on-numbers-and-booleans",
    """
    sel:
        Count|exists: true
        Flag|exists: true
    condition: sel
    """,
    [{"Count": 0, "Flag": False}, {"Count": None, "Flag": False}, {"Count": 0, "Flag": None}],
    [0],
)
case(
    "exists-on-missing-column",
    """
    present:
        Missing|exists: true
    absent:
        Missing|exists: false
    condition: absent and not present
    """,
    [{"Value": "x"}, {"Value": None}],
    [0, 1],
)
case(
    "exists-on-struct-path",
    """
    sel:
        process.executable|exists: true
    condition: sel
    """,
    [{"process": {"executable": "a"}}, {"process": {"executable": None}}, {"process": None}],
    [0],
)

# ======================================================================== modifiers: fieldref

case(
    "fieldref-equal-case-insensitive",
    """
    sel:
        Image|fieldref: ParentImage
    condition: sel
    """,
    [
        {"Image": "C:\\A.exe", "ParentImage": "c:\\a.exe"},
        {"Image": "C:\\A.exe", "ParentImage": "C:\\B.exe"},
        {"Image": "C:\\A.exe", "ParentImage": None},
        {"Image": None, "ParentImage": None},
        {"Image": "Straße", "ParentImage": "STRASSE"},
        {"Image": "", "ParentImage": ""},
    ],
    [0, 4, 5],
)
case(
    # The engine folds a dictionary's values once per key: a key seen again meets another
    # value on the other side, and a null key none.
    "fieldref-dictionary-against-plain-column",
    """
    sel:
        User|fieldref: ParentUser
    condition: sel
    """,
    [
        {"User": "NT AUTHORITY\\SYSTEM", "ParentUser": "nt authority\\system"},
        {"User": "NT AUTHORITY\\SYSTEM", "ParentUser": "CORP\\alice"},
        {"User": "CORP\\Alice", "ParentUser": "corp\\ALICE"},
        {"User": "NT AUTHORITY\\SYSTEM", "ParentUser": "NT AUTHORITY\\SYSTEM"},
        {"User": None, "ParentUser": "CORP\\alice"},
        {"User": "CORP\\Alice", "ParentUser": None},
        {"User": "Straße", "ParentUser": "STRASSE"},
        {"User": "Straße", "ParentUser": "strasse!"},
        {"User": None, "ParentUser": None},
    ],
    [0, 2, 3, 6],
    types={"User": pa.dictionary(pa.int8(), pa.string()), "ParentUser": pa.string()},
)
case(
    "fieldref-value-is-not-a-pattern",
    """
    sel:
        A|fieldref: B
    condition: sel
    """,
    [{"A": "abc", "B": "a*"}, {"A": "a*", "B": "a*"}, {"A": "abc", "B": "a?c"}],
    [1],
)
case(
    "fieldref-contains-startswith-endswith",
    """
    c:
        CommandLine|fieldref|contains: Image
    s:
        CommandLine|fieldref|startswith: Image
    e:
        CommandLine|fieldref|endswith: Image
    condition: c and not s and not e
    """,
    [
        {"CommandLine": "run cmd.exe now", "Image": "CMD.EXE"},
        {"CommandLine": "cmd.exe now", "Image": "cmd.exe"},
        {"CommandLine": "run cmd.exe", "Image": "cmd.exe"},
        {"CommandLine": "run", "Image": "cmd.exe"},
    ],
    [0],
)
case(
    "fieldref-startswith",
    """
    s:
        CommandLine|fieldref|startswith: Image
    condition: s
    """,
    [
        {"CommandLine": "cmd.exe now", "Image": "cmd.exe"},
        {"CommandLine": "run cmd.exe", "Image": "cmd.exe"},
        {"CommandLine": "cmd.exe", "Image": None},
    ],
    [0],
)
case(
    "fieldref-endswith",
    """
    e:
        CommandLine|fieldref|endswith: Image
    condition: e
    """,
    [{"CommandLine": "cmd.exe now", "Image": "cmd.exe"}, {"CommandLine": "run cmd.exe", "Image": "cmd.exe"}],
    [1],
)
case(
    "fieldref-integers-compare-as-text",
    """
    sel:
        ProcessId|fieldref: ParentProcessId
    condition: sel
    """,
    [
        {"ProcessId": 4, "ParentProcessId": "4"},
        {"ProcessId": 4, "ParentProcessId": "04"},
        {"ProcessId": 5, "ParentProcessId": "4"},
    ],
    [0],
)
case(
    "fieldref-to-missing-column",
    """
    sel:
        Image|fieldref: Missing
    condition: not sel
    """,
    [{"Image": "a"}, {"Image": None}],
    [0, 1],
)

# ======================================================================== modifiers: timestamps

case(
    "hour-naive-timestamp",
    """
    sel:
        Time|hour: 13
    condition: sel
    """,
    [
        {"Time": dt.datetime(2024, 3, 5, 13, 45, 10)},
        {"Time": dt.datetime(2024, 3, 5, 14, 13, 0)},
        {"Time": None},
    ],
    [0],
)
case(
    "timestamp-parts-aware-timestamp-taken-in-utc",
    """
    hour:
        Time|hour: 23
    day:
        Time|day: 31
    month:
        Time|month: 12
    year:
        Time|year: 2023
    condition: all of them
    """,
    [
        {"Time": dt.datetime(2024, 1, 1, 1, 30, tzinfo=PLUS2)},
        {"Time": dt.datetime(2023, 12, 31, 23, 30, tzinfo=PLUS2)},
    ],
    [0],
    types={"Time": pa.timestamp("us", tz="+02:00")},
)
case(
    "minute-and-week",
    """
    minute:
        Time|minute: 7
    week:
        Time|week: 53
    condition: minute and week
    """,
    [
        {"Time": dt.datetime(2021, 1, 1, 10, 7)},  # ISO week 53 of 2020
        {"Time": dt.datetime(2021, 1, 4, 10, 7)},  # ISO week 1
        {"Time": dt.datetime(2021, 1, 1, 10, 8)},
    ],
    [0],
)
case(
    "week-is-iso-week-and-year-is-calendar-year",
    """
    sel:
        Time|week: 1
        Time|year: 2024
    condition: sel
    """,
    [
        {"Time": dt.datetime(2024, 12, 30, 0, 0)},  # ISO week 1 of 2025, calendar 2024
        {"Time": dt.datetime(2024, 1, 1, 0, 0)},  # ISO week 1 of 2024
        {"Time": dt.datetime(2024, 1, 8, 0, 0)},
    ],
    [0, 1],
)
case(
    "timestamp-parts-on-date-column",
    """
    sel:
        Day|day: 29
        Day|month: 2
        Day|year: 2024
    condition: sel
    """,
    [{"Day": dt.date(2024, 2, 29)}, {"Day": dt.date(2023, 2, 28)}],
    [0],
)
case(
    "hour-on-iso-strings",
    """
    sel:
        Time|hour: 13
    condition: sel
    """,
    [
        {"Time": "2024-03-05T13:45:00Z"},  # 0
        {"Time": "2024-03-05 13:45:00"},  # 1
        {"Time": "2024-03-05T13:45"},  # 2
        {"Time": "2024-03-05T13:45:00.123456"},  # 3
        {"Time": "2024-03-05T15:45:00.5+02:00"},  # 4: 13:45 UTC
        {"Time": "2024-03-05T13:45:00+02:00"},  # 5: 11:45 UTC
        {"Time": "2024-03-05T08:15:00-04:45"},  # 6: 13:00 UTC
        {"Time": "13:45:00"},  # 7: no date
        {"Time": "2024-03-05"},  # 8: midnight
        {"Time": "2024-03-05t13:45:00"},  # 9: lowercase t is not the form
        {"Time": "2024-03-05T13:45:00+0200"},  # 10: 11:45 UTC
        {"Time": " 2024-03-05T13:45:00"},  # 11: leading space
        {"Time": "2024-3-5T13:45:00"},  # 12
    ],
    [0, 1, 2, 3, 4, 6],
)
case(
    "timestamp-offset-with-or-without-colon",
    """
    sel:
        Time|hour: 22
    condition: sel
    """,
    [
        {"Time": "2024-03-05T23:30:00+01:00"},  # 0: 22:30 UTC
        {"Time": "2024-03-05T23:30:00+0100"},  # 1: 22:30 UTC, offset without colon
        {"Time": "2024-03-05T21:30:00-0100"},  # 2: 22:30 UTC
        {"Time": "2024-03-05T23:30:00"},  # 3: no offset: 23:30
        {"Time": "2024-03-05T23:30:00+01"},  # 4: hours alone are not the form
        {"Time": "2024-03-05T23:30:00+010"},  # 5
        {"Time": "2024-03-05T23:30:00+01:0"},  # 6
        {"Time": "2024-03-05T23:30:00+2400"},  # 7: offset hours past 23
        {"Time": "2024-03-05T22:30:00+00:60"},  # 8: offset minutes past 59
        {"Time": "2024-03-05T22:30:00.\u0661\u0662\u0663\u0664\u0665Z"},  # 9: digits are ASCII
        {"Time": "\u0662\u0660\u0662\u0664-03-05T22:30:00Z"},  # 10
    ],
    [0, 1, 2],
)
case(
    "timestamp-string-fraction-has-any-number-of-digits",
    """
    sel:
        Time|minute: 0
    condition: sel
    """,
    [
        {"Time": "2024-03-05T13:00:59.1Z"},
        {"Time": "2024-03-05T13:00:59.123456789Z"},
        {"Time": "2024-03-05T13:00:59.1234567891Z"},
        {"Time": "2024-03-05T13:00:59.123456789012345+00:00"},
    ],
    [0, 1, 2, 3],
)
case(
    "timestamp-parts-on-iso-strings-cross-midnight",
    """
    sel:
        Time|day: 31
        Time|month: 12
        Time|year: 2023
    condition: sel
    """,
    [
        {"Time": "2024-01-01T01:30:00+02:00"},
        {"Time": "2024-01-01T01:30:00"},
        {"Time": "2023-12-31"},
        {"Time": "2023-12-31T23:30:00-01:00"},
    ],
    [0, 2],
)
case(
    "timestamp-parts-invalid-strings-and-other-types",
    """
    sel:
        Time|month: 1
    condition: sel
    """,
    [
        {"Time": "2024-13-01T00:00:00"},
        {"Time": "2024-01-32"},
        {"Time": "2024/01/05"},
        {"Time": "2024-01-05T24:00:00"},
        {"Time": "January"},
        {"Time": "2024-01-05T10:00:00Z"},
    ],
    [5],
)
case(
    "timestamp-parts-on-integers-are-false",
    """
    sel:
        Time|year: 2024
    condition: sel
    """,
    [{"Time": 2024}, {"Time": 1704067200}],
    [],
)
case(
    "timestamp-part-with-compare",
    """
    night:
        Time|hour|gte: 22
    condition: night
    """,
    [
        {"Time": dt.datetime(2024, 1, 1, 21, 59)},
        {"Time": dt.datetime(2024, 1, 1, 22, 0)},
        {"Time": dt.datetime(2024, 1, 1, 23, 59)},
    ],
    [1, 2],
)


case(
    "keyword-boolean-matches-its-text",
    """
    keywords:
        - true
    condition: keywords
    """,
    [{"Flag": "TRUE"}, {"Flag": "true "}, {"Flag": "false"}, {"Flag": "untrue"}],
    [0, 1, 3],
)
case(
    "keyword-column-given-as-struct-path",
    """
    keywords:
        - 'evil'
    condition: keywords
    """,
    [{"process": {"name": "EVIL"}, "note": "evil"}, {"process": {"name": "good"}, "note": "evil"}],
    [0],
    keyword_columns=["process.name"],
)


# ======================================================================== Arrow column types
# The same semantics on every physical type the engine reads. (For the reference these
# are ordinary repeats: Arrow types do not change Python values.)

STRING_TYPES = {
    "utf8": pa.string(),
    "large_utf8": pa.large_string(),
    "utf8_view": pa.string_view(),
    "dictionary": pa.dictionary(pa.int32(), pa.string()),
}
INTEGER_TYPES = {
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint16": pa.uint16(),
    "uint64": pa.uint64(),
}


def _typed(base: Case, suffix: str, types: dict[str, pa.DataType]) -> None:
    CASES.append(replace(base, id=f"{base.id}[{suffix}]", types=types))


_STRING_CASES = {
    "casefold-greek-sigma-forms": ["Name"],
    "glob-question-marks-count-characters": ["Image"],
    "contains-all-keeps-spaces": ["CommandLine"],
    "null-matches-only-absent": ["Value", "Other"],
    "empty-string-matches-only-empty": ["Value", "Other"],
    "re-with-escapes": ["Value"],
    "cidr-ipv6": ["SourceIp"],
    "number-equals-string-column": ["EventID"],
    "boolean-rule-on-string-values": ["Enabled"],
    "exists-true": ["Value", "Other"],
    "fieldref-equal-case-insensitive": ["Image", "ParentImage"],
    "fieldref-contains-startswith-endswith": ["CommandLine", "Image"],
    "fieldref-dictionary-against-plain-column": ["ParentUser"],
    "hour-on-iso-strings": ["Time"],
    "timestamp-offset-with-or-without-colon": ["Time"],
    "keywords-default-all-string-columns": ["A", "B"],
    "windash": ["CommandLine"],
}
_INTEGER_CASES = {
    "integer-column-matched-by-string-value": ["EventID"],
    "number-equals-integer-column": ["EventID"],
    "gte-and-lt-together": ["Count"],
    "exists-on-numbers-and-booleans": ["Count"],
    "re-sees-integers-and-booleans-as-text": ["EventID"],
}
_by_id = {c.id: c for c in CASES}
for _case_id, _columns in _STRING_CASES.items():
    for _name, _type in STRING_TYPES.items():
        _typed(_by_id[_case_id], _name, {c: _type for c in _columns})
for _case_id, _columns in _INTEGER_CASES.items():
    for _name, _type in INTEGER_TYPES.items():
        if _case_id == "integer-column-matched-by-string-value" and _name in {"int8", "uint16"}:
            continue  # values do not fit
        if _case_id == "number-equals-integer-column" and _name == "int8":
            continue
        if _case_id == "re-sees-integers-and-booleans-as-text" and _name == "int8":
            continue
        _typed(_by_id[_case_id], _name, {c: _type for c in _columns})
_typed(_by_id["negative-number"], "int8", {"Delta": pa.int8()})
_typed(_by_id["gt-float-column-and-float-bound"], "float32", {"Value": pa.float32()})
_typed(_by_id["number-equals-float-column"], "float32", {"Value": pa.float32()})
_typed(_by_id["float-is-not-text"], "float32", {"Value": pa.float32()})
for _name, _type in {
    "timestamp_s": pa.timestamp("s"),
    "timestamp_ms": pa.timestamp("ms"),
    "timestamp_ns": pa.timestamp("ns"),
}.items():
    _typed(_by_id["minute-and-week"], _name, {"Time": _type})
    _typed(_by_id["timestamp-part-with-compare"], _name, {"Time": _type})
for _name, _type in {
    "timestamp_ns_utc": pa.timestamp("ns", tz="UTC"),
    "timestamp_s_plus2": pa.timestamp("s", tz="+02:00"),
    "timestamp_ms_minus5": pa.timestamp("ms", tz="-05:00"),
}.items():
    _typed(_by_id["timestamp-parts-aware-timestamp-taken-in-utc"], _name, {"Time": _type})
_typed(_by_id["timestamp-parts-on-date-column"], "date64", {"Day": pa.date64()})

case(
    "keywords-default-includes-every-string-type",
    """
    keywords:
        - 'evil'
    condition: keywords
    """,
    [
        {"A": "evil", "B": "x", "C": "x", "D": "x", "N": 1},
        {"A": "x", "B": "EVIL", "C": "x", "D": "x", "N": 2},
        {"A": "x", "B": "x", "C": "Evil", "D": "x", "N": 3},
        {"A": "x", "B": "x", "C": "x", "D": "eviL", "N": 4},
        {"A": "x", "B": "x", "C": "x", "D": "x", "N": 5},
        {"A": None, "B": None, "C": None, "D": None, "N": 6},
    ],
    [0, 1, 2, 3],
    types={
        "A": pa.string(),
        "B": pa.large_string(),
        "C": pa.string_view(),
        "D": pa.dictionary(pa.int8(), pa.string()),
        "N": pa.int64(),
    },
)
case(
    "dictionary-column-with-repeated-values",
    """
    sel:
        Image|endswith: '\\cmd.exe'
    condition: sel
    """,
    [{"Image": "C:\\cmd.exe"}, {"Image": "C:\\x.exe"}, {"Image": "C:\\cmd.exe"}, {"Image": None}],
    [0, 2],
    types={"Image": pa.dictionary(pa.int16(), pa.large_string())},
)
case(
    "all-null-column-of-string-type-is-absent",
    """
    sel:
        Image: null
    other:
        Image: '*'
    condition: sel and not other
    """,
    [{"Image": None, "A": "x"}, {"Image": None, "A": "y"}],
    [0, 1],
    types={"Image": pa.string()},
)
case(
    "all-null-column-of-null-type-is-absent",
    """
    sel:
        Image|exists: false
    condition: sel
    """,
    [{"Image": None, "A": "x"}, {"Image": None, "A": "y"}],
    [0, 1],
)
case(
    "boolean-column-typed",
    """
    sel:
        Enabled: true
    text:
        Enabled: 'TRUE'
    condition: sel and text
    """,
    [{"Enabled": True}, {"Enabled": False}, {"Enabled": None}],
    [0],
    types={"Enabled": pa.bool_()},
)
