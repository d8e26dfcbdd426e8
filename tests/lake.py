"""A mixed Windows "data lake" table built from SigmaHQ's regression ``.evtx`` files.

:func:`regression_lake` reads every regression ``.evtx`` (all channels, through
``sigmarrow.evtx.read_evtx``) into ONE table: the columns are the union of every file's
flattened names (first-appearance order), ``EventID`` is int64 and every other column a
nullable string; a file without a column has nulls there. Each row remembers its file and its
regression case (:class:`Lake`). Built once per session.

:func:`widen` makes a bench-sized table of the same kind: the regression events repeated with
their per-event values (record ids, times, GUIDs, process ids) perturbed, among synthetic
events of the other channels of a real lake (Security, System, Application, BITS, RDP, ...),
so that the result has ~600 columns and each row fills few of them: 14-40 for a synthetic
event, 17-58 for a regression one (the shape measured on a public collection of real attack
EVTX samples, issue 10, is 622 columns and 10-40 filled).

:func:`compile_with_rules` and :func:`reference_disagreements` compile a rule set with a
pipeline and compare the engine's hits with the reference evaluator's on such a table.

Used by ``tests/test_lake.py`` and ``benches/bench_lake.py``.
"""

from __future__ import annotations

import functools
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import sigmarrow
from sigma.collection import SigmaCollection
from sigmahq import RegressionCase, regression_cases
from sigmarrow import reference
from sigmarrow.compiler import compile_rules
from sigmarrow.evtx import read_evtx
from sigmarrow.rules import load_rules

SYSMON = "Microsoft-Windows-Sysmon/Operational"


@dataclass(frozen=True)
class Lake:
    """The mixed table and where each row came from."""

    table: pa.Table
    cases: tuple[RegressionCase, ...]  # one per file, in table order
    starts: tuple[int, ...]  # the first row of each case's file; len(cases) + 1 entries

    def rows_of(self, case: RegressionCase) -> range:
        """The rows of the case's own ``.evtx`` file."""
        i = self.cases.index(case)
        return range(self.starts[i], self.starts[i + 1])


def unify(tables: Sequence[pa.Table]) -> pa.Table:
    """One table of many: the union of the columns, in first-appearance order, nulls where
    a table lacks one (``EventID`` int64, every other column a string)."""
    names = list(dict.fromkeys(name for t in tables for name in t.column_names))
    schema = pa.schema(
        [pa.field(n, pa.int64() if n == "EventID" else pa.string()) for n in names]
    )
    aligned = [
        pa.table(
            [
                t.column(f.name).cast(f.type) if f.name in t.column_names
                else pa.nulls(t.num_rows, f.type)
                for f in schema
            ],
            schema=schema,
        )
        for t in tables
    ]
    return pa.concat_tables(aligned).combine_chunks()


@functools.cache
def regression_lake() -> Lake:
    """Every regression ``.evtx`` of the snapshot in one table (cached)."""
    cases = regression_cases()
    tables = [read_evtx(case.evtx) for case in cases]
    starts = [0]
    for table in tables:
        starts.append(starts[-1] + table.num_rows)
    return Lake(unify(tables), cases, tuple(starts))


def filled_per_row(table: pa.Table) -> list[int]:
    """How many non-null cells each row has."""
    counts = np.zeros(table.num_rows, dtype=np.int64)
    for column in table.columns:
        counts += np.asarray(column.is_valid(), dtype=np.int64)
    return counts.tolist()


# --------------------------------------------------------------------------------------
# widen: a bench-sized lake of the same shape
# --------------------------------------------------------------------------------------

#: Values unique to each event in real logs; a repeated regression event gets new ones.
_VOLATILE_NUMBERS = ("EventRecordID", "Execution_ProcessID", "Execution_ThreadID", "ProcessId",
                     "ParentProcessId", "SourceProcessId", "TargetProcessId")
_VOLATILE_GUIDS = ("ProcessGuid", "ParentProcessGuid", "LogonGuid", "SourceProcessGUID",
                   "TargetProcessGUID", "SourceProcessGuid", "TargetProcessGuid")

#: (channel, weight among the synthetic rows, event ids): the channel mix of a real lake
#: (Security about half, then Application, BITS, RDP, System, PowerShell, Defender, ...).
_CHANNELS: tuple[tuple[str, float, tuple[int, ...]], ...] = (
    ("Security", 0.54, (4624, 4625, 4634, 4648, 4656, 4658, 4662, 4663, 4672, 4688, 4689,
                        4698, 4702, 4720, 4732, 4768, 4769, 4776, 5140, 5145, 5156, 5158)),
    ("Application", 0.11, (1000, 1001, 1026, 1033, 4625, 11707, 16384, 16394)),
    ("Microsoft-Windows-Bits-Client/Operational", 0.04, (3, 4, 59, 60, 61)),
    ("Microsoft-Windows-TerminalServices-LocalSessionManager/Operational", 0.03, (21, 22, 24, 25)),
    ("System", 0.05, (7036, 7040, 7045, 104, 6005, 6006, 1014, 10016)),
    ("Microsoft-Windows-PowerShell/Operational", 0.04, (4103, 4104, 40961, 40962)),
    ("Windows PowerShell", 0.02, (400, 403, 600, 800)),
    ("Microsoft-Windows-Windows Defender/Operational", 0.01, (1116, 1117, 5001, 5007)),
    ("Microsoft-Windows-TaskScheduler/Operational", 0.01, (106, 129, 140, 141, 200, 201)),
    ("Microsoft-Windows-WMI-Activity/Operational", 0.01, (5857, 5858, 5860, 5861)),
    ("Microsoft-Windows-SMBClient/Security", 0.005, (31001, 31010)),
    ("Microsoft-Windows-NTLM/Operational", 0.005, (8001, 8002, 8004)),
    ("Microsoft-Windows-CodeIntegrity/Operational", 0.005, (3033, 3063, 3076, 3077)),
    ("Microsoft-Windows-DNS Client Events/Operational", 0.005, (3006, 3008, 3020)),
    ("Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", 0.005,
     (2004, 2006, 2033, 2097)),
    ("Microsoft-Windows-PrintService/Admin", 0.003, (354, 808)),
    ("Microsoft-Windows-PrintService/Operational", 0.003, (307, 316)),
    ("Microsoft-Windows-AppLocker/EXE and DLL", 0.003, (8002, 8003, 8004)),
    ("Microsoft-Windows-CAPI2/Operational", 0.003, (11, 70, 90)),
    ("Microsoft-Windows-DriverFrameworks-UserMode/Operational", 0.003, (2003, 2100)),
    ("Microsoft-Windows-Security-Mitigations/User Mode", 0.002, (1, 10)),
    ("Microsoft-Windows-AppXDeploymentServer/Operational", 0.002, (400, 401, 603)),
    ("Microsoft-Windows-LSA/Operational", 0.002, (300, 6033)),
    ("Microsoft-Windows-Shell-Core/Operational", 0.002, (9705, 9707, 9708)),
    ("Microsoft-Windows-DHCP-Server/Operational", 0.002, (1031, 20097)),
    ("OpenSSH/Operational", 0.002, (4,)),
    ("DNS Server", 0.002, (150, 770)),
    ("MSExchange Management", 0.002, (1, 6)),
)

#: Real EventData names (Security, System, PowerShell, Defender, BITS, ...); the rest of the
#: synthetic columns are compounds of _PARTS.
_NAMES = (
    "SubjectUserSid", "SubjectUserName", "SubjectDomainName", "SubjectLogonId",
    "TargetUserSid", "TargetUserName", "TargetDomainName", "TargetLogonId", "LogonType",
    "LogonProcessName", "AuthenticationPackageName", "WorkstationName", "TransmittedServices",
    "LmPackageName", "KeyLength", "ProcessName", "IpAddress", "IpPort", "ImpersonationLevel",
    "RestrictedAdminMode", "ElevatedToken", "VirtualAccount", "TargetLinkedLogonId",
    "NetworkAccountName", "NetworkAccountDomain", "Status", "SubStatus", "FailureReason",
    "ServiceName", "ImagePath", "ServiceType", "StartType", "AccountName", "ShareName",
    "ShareLocalPath", "RelativeTargetName", "AccessMask", "AccessList", "AccessReason",
    "ObjectServer", "ObjectType", "ObjectName", "HandleId", "PrivilegeList", "TaskName",
    "TaskContent", "ClientProcessId", "ScriptBlockText", "ScriptBlockId", "Path",
    "MessageNumber", "MessageTotal", "ContextInfo", "Payload", "HostApplication",
    "EngineVersion", "ThreatName", "ThreatID", "SeverityName", "CategoryName", "FWLink",
    "DetectionUser", "Origin", "ExecutionName", "jobTitle", "jobId", "jobOwner", "url",
    "fileLength", "bytesTransferred", "Application", "SourceAddress", "SourcePort",
    "DestAddress", "DestPort", "Protocol", "FilterRTID", "LayerName", "TicketOptions",
    "TicketEncryptionType", "ServiceSid", "PreAuthType", "CertIssuerName", "Workstation",
    "PackageName", "param1", "param2", "param3", "param4", "Properties", "OperationType",
    "AdditionalInfo", "GroupName", "MemberName", "MemberSid", "SamAccountName", "DisplayName",
    "UserPrincipalName", "HomeDirectory", "ProfilePath", "UserAccountControl", "NewUacValue",
    "OldUacValue", "ProductName", "ActionName", "ResultCode", "QueryName", "QueryType",
    "QueryResults", "ServerName", "Domain", "ClientName", "ClientAddress", "SessionID", "User",
    "Address", "Reason", "ModuleName", "PolicyName", "RuleName", "RuleId", "ModifyingUser",
    "ModifyingApplication",
)
_PARTS = (
    "Client", "Server", "Session", "Network", "Remote", "Local", "Object", "Policy", "Device",
    "Driver", "Module", "Job", "Task", "Certificate", "Package", "Adapter", "Interface",
    "Provider", "Filter", "Channel", "Audit", "Token", "Handle", "Thread", "Service",
    "Account", "Group", "Share", "Registry", "Firewall", "Update", "Backup", "Cluster",
)
_SUFFIXES = (
    "Name", "Id", "Path", "Status", "Flags", "Count", "Type", "Version", "Address", "Port",
    "Time", "Reason", "Guid", "Mode", "Value",
)
_WORDS = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
    "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo", "sierra",
    "tango", "uniform", "victor", "whiskey", "xray", "yankee", "zulu",
)


def _synthetic_names(count: int, taken: set[str]) -> list[str]:
    compounds = (part + suffix for part in _PARTS for suffix in _SUFFIXES)
    return [n for n in dict.fromkeys([*_NAMES, *compounds]) if n not in taken][:count]


def _guid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032X}"
    return "{" + f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}" + "}"


def _value(rng: random.Random, name: str, pool: list[str]) -> str:
    """A value drawn like a real column's: mostly from a small pool (repeats), sometimes new."""
    if pool and rng.random() < 0.8:
        return pool[min(int(rng.paretovariate(1.2)) - 1, len(pool) - 1)]
    kind = rng.randrange(4)
    if kind == 0:
        return str(rng.randrange(100_000))
    if kind == 1:
        return _guid(rng)
    if kind == 2:
        return f"0x{rng.getrandbits(32):x}"
    return f"{rng.choice(_WORDS)}-{name.lower()}-{rng.randrange(1000)}"


def _templates(
    rng: random.Random, base: pa.Table, columns: int
) -> list[tuple[str, int, list[str]]]:
    """(channel, event id, EventData names) of every synthetic event type. Each new name
    belongs to one type (so the table reaches `columns` columns); each type also shares
    names drawn from all of them, up to 10-40 filled columns with the system ones."""
    extra = _synthetic_names(max(columns - base.num_columns, 0), set(base.column_names))
    rng.shuffle(extra)
    types = [(ch, eid) for ch, _, eids in _CHANNELS for eid in eids]
    templates = []
    for i, (channel, eid) in enumerate(types):
        width = max(rng.randrange(10, 41) - _SYSTEM_FILLED, 1)
        own = extra[i :: len(types)]
        shared = rng.sample(extra, min(max(width - len(own), 0), len(extra)))
        templates.append((channel, eid, list(dict.fromkeys(own + shared))))
    return templates


def _system_event(rng: random.Random, channel: str, event_id: int, record: int) -> dict:
    """The System part of a synthetic event (what every real event has)."""
    return {
        "EventID": event_id, "Channel": channel, "Provider_Name": channel.split("/")[0],
        "Computer": f"WS{rng.randrange(50):04d}.corp.example",
        "Level": str(rng.choice((0, 4, 4, 4, 2, 3))), "Task": str(rng.randrange(20)),
        "Opcode": "0", "Keywords": "0x8020000000000000", "Version": str(rng.randrange(3)),
        "EventRecordID": str(record + 1),
        "TimeCreated": f"2026-12-01T{record // 3_600_000 % 24:02d}:{record // 60_000 % 60:02d}:"
                       f"{record // 1000 % 60:02d}.{record % 1000:03d}000Z",
        "Execution_ProcessID": str(rng.randrange(4, 9000)),
        "Execution_ThreadID": str(rng.randrange(4, 9000)),
    }


_SYSTEM_FILLED = len(_system_event(random.Random(0), "", 0, 0))


def _perturbed(rows: list[dict], rng: random.Random, copy: int) -> list[dict]:
    out = []
    guids: dict[str, str] = {}  # one new GUID per old one in a copy: links stay linked
    for row in rows:
        row = dict(row)
        for name in _VOLATILE_NUMBERS:
            if row.get(name) is not None:
                row[name] = str(rng.randrange(100, 1_000_000))
        for name in _VOLATILE_GUIDS:
            if row.get(name) is not None:
                row[name] = guids.setdefault(row[name], _guid(rng))
        if row.get("TimeCreated") is not None:
            row["TimeCreated"] = f"2026-12-{1 + copy % 28:02d}T{rng.randrange(24):02d}:" \
                f"{rng.randrange(60):02d}:{rng.randrange(60):02d}.{rng.randrange(10**6):06d}Z"
        out.append(row)
    return out


class _Columns:
    """A sparse table under construction: per column, the rows that have a value and the
    values (rows x ~600 Python lists of mostly None would not fit a bench)."""

    def __init__(self, names: Sequence[str]) -> None:
        self.rows: dict[str, list[int]] = {n: [] for n in names}
        self.values: dict[str, list] = {n: [] for n in names}

    def put(self, row: int, event: dict) -> None:
        for name, value in event.items():
            if value is not None:
                self.rows[name].append(row)
                self.values[name].append(value)

    def table(self, num_rows: int) -> pa.Table:
        arrays = []
        for name, rows in self.rows.items():
            kind = pa.int64() if name == "EventID" else pa.string()
            dense = pa.array([*self.values[name], None], kind)
            where = np.full(num_rows, len(rows), dtype=np.int64)  # the trailing null
            where[np.array(rows, dtype=np.int64)] = np.arange(len(rows))
            arrays.append(dense.take(pa.array(where)))
        return pa.table(arrays, names=list(self.rows))


def widen(base: pa.Table, rows: int, *, columns: int = 600, real_share: float = 0.14,
          seed: int = 0) -> pa.Table:
    """`rows` events of a mixed lake: `real_share` of them are `base`'s events (repeated as
    often as needed, per-event values perturbed from the second copy on), the others
    synthetic events of 28 channels (real channel names and event ids, 14-40 filled columns
    each) whose EventData names bring the table to `columns` columns; all in a seeded random
    order (the same arguments give the same table)."""
    rng = random.Random(seed)
    base_rows = base.to_pylist()
    templates = _templates(rng, base, columns)
    weights = {ch: share / len(eids) for ch, share, eids in _CHANNELS}
    template_weights = [weights[ch] for ch, _, _ in templates]
    pools = {name: [_value(rng, name, []) for _ in range(20)]
             for _, _, names in templates for name in names}
    columns_in_order = [*base.column_names, *(n for _, _, fields in templates for n in fields)]
    built = _Columns(list(dict.fromkeys(columns_in_order)))
    order = list(range(rows))
    rng.shuffle(order)
    real = round(rows * real_share)
    for k in range(real):
        copy, i = divmod(k, len(base_rows))
        if i == 0 and copy:
            batch = _perturbed(base_rows, rng, copy)
        built.put(order[k], base_rows[i] if copy == 0 else batch[i])
    for record in range(rows - real):
        channel, eid, fields = rng.choices(templates, template_weights)[0]
        event = _system_event(rng, channel, eid, record)
        for name in fields:
            event[name] = _value(rng, name, pools[name])
        built.put(order[real + record], event)
    return built.table(rows)


# --------------------------------------------------------------------------------------
# The rules on such a table, against the reference evaluator
# --------------------------------------------------------------------------------------


def compile_with_rules(
    sources: Any, pipeline: Any, logsource: str = "windows"
) -> tuple[sigmarrow.Matcher, list[Any]]:
    """What ``sigmarrow.compile(sources, pipeline, logsource)`` compiles, and the pySigma rules
    it compiled (processed by the pipeline: what the reference must evaluate), in the
    matcher's rule order."""
    loaded = load_rules(sources, pipeline, logsource)
    matcher = sigmarrow.Matcher(compile_rules(loaded.rules, list(loaded.errors), loaded.skipped))
    by_id = {str(rule.id): rule for rule in loaded.rules}
    return matcher, [by_id[r.id] for r in matcher.rules]


def hits_by_rule(matcher: sigmarrow.Matcher, table: pa.Table, threads: int | None = None
                 ) -> dict[str, list[int]]:
    """Rule id (lower case) -> the rows the engine matches, in order."""
    rows, indices = matcher.match_indices(table, threads=threads)
    hits: dict[str, list[int]] = defaultdict(list)
    for row, index in zip(rows.to_pylist(), indices.to_pylist(), strict=True):
        hits[matcher.rules[index].id.lower()].append(row)
    return dict(hits)


def reference_hits(rules: Sequence[Any], events: Sequence[dict[str, Any]]) -> dict[str, list[int]]:
    """Rule id (lower case) -> the rows the reference evaluator matches, in order."""
    found: dict[str, list[int]] = defaultdict(list)
    for row, rule_id in reference.match(SigmaCollection(list(rules)), events):
        found[rule_id.lower()].append(row)
    return dict(found)


@dataclass
class Comparison:
    """What :func:`reference_disagreements` compared, and where the engine differed."""

    differences: list[str]
    every_rule_rows: int  # rows on which every rule was compared
    rules_on_all_rows: int  # rules compared on every row
    evaluations: int  # (rule, event) pairs the reference evaluated
    reference_hits: int  # hits of the reference on all rows


def reference_disagreements(
    matcher: sigmarrow.Matcher, rules: Sequence[Any], table: pa.Table,
    every_rule_rows: Sequence[int], random_rules: int, seed: int,
) -> Comparison:
    """The engine's rows against the reference's: EVERY rule on `every_rule_rows`; on ALL
    rows of `table`, every rule with a hit of either there, or an engine hit anywhere, and
    `random_rules` rules drawn with `seed`. (The reference evaluates ~5,000 (rule, event)
    pairs a second: every rule on every row is for small tables only.)"""
    # A null is an absent value for the reference too; dropping them saves it ~600 keys an event.
    events = [{k: v for k, v in e.items() if v is not None} for e in table.to_pylist()]
    engine = hits_by_rule(matcher, table)
    position = {row: i for i, row in enumerate(every_rule_rows)}
    on_sample = reference_hits(rules, [events[row] for row in every_rule_rows])
    ids = [r.id.lower() for r in matcher.rules]
    differences = []
    for rule, rule_id in zip(matcher.rules, ids, strict=True):
        mine = [position[row] for row in engine.get(rule_id, []) if row in position]
        if mine != on_sample.get(rule_id, []):
            differences.append(f"{rule.title!r} ({rule.id}) on rows {list(every_rule_rows)}: "
                               f"engine {mine}, reference {on_sample.get(rule_id, [])}")
    drawn = random.Random(seed).sample(sorted(ids), min(random_rules, len(ids)))
    chosen = {*engine, *on_sample, *drawn}
    subset = [rule for rule, rule_id in zip(rules, ids, strict=True) if rule_id in chosen]
    on_all = reference_hits(subset, events)
    for rule, rule_id in zip(matcher.rules, ids, strict=True):
        if rule_id in chosen and engine.get(rule_id, []) != on_all.get(rule_id, []):
            differences.append(f"{rule.title!r} ({rule.id}): engine {engine.get(rule_id, [])}, "
                               f"reference {on_all.get(rule_id, [])}")
    return Comparison(
        differences,
        len(every_rule_rows),
        len(subset),
        len(rules) * len(every_rule_rows) + len(subset) * len(events),
        sum(map(len, on_all.values())),
    )
