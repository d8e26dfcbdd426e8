"""``sigmarrow explain RULE``: the compiled program of one rule, readable.

Shows what the engine is given for the rule (``sigmarrow.program``): its atoms
grouped by field (operation, anchor, literal, case), its condition as an indented tree over
those atoms, and what the engine can derive from them: the literal tables the atoms go
into, the literals a glob or regex needs (its prefilter), and the engine's own plan for the
rule: the sets of atoms one of which is true in every match (the rule is evaluated only
where each set hit), the set chosen as its *witness*, and the *lazy* atoms, tested only on
the rows where every needed set hit (see docs/engine.md).

With ``--rules SET`` it also tells which of the rule's atoms other rules of SET share (same
field, operation and literal), and RULE may then be a rule id, a title or a file name of
the set.

    sigmarrow explain rules/windows/process_creation/proc_creation_win_cloudflared_portable_execution.yml
    sigmarrow explain fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd --rules rules/
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sigmarrow.program import Expr, atom_ids, children

# Atoms as explain reads them: any op, from a program that may come from a file.
Atom = Mapping[str, Any]

__all__ = ["add_arguments", "atom_text", "explain", "run"]

_ANCHOR_WORD = {"exact": "equals", "prefix": "startswith", "suffix": "endswith", "contains": "contains"}


def _lit(text: str) -> str:
    """A literal between single quotes (which show leading and trailing spaces), written as
    in a Sigma rule: backslashes as they are; quotes and unprintable characters escaped."""
    out = []
    for c in text:
        if c == "'":
            out.append("\\'")
        elif c.isprintable() or c == " ":
            out.append(c)
        else:
            out.append(repr(c)[1:-1])
    return "'" + "".join(out) + "'"


def atom_text(atom: Atom, fields: Sequence[str]) -> str:
    """One atom as a line: ``Image endswith '\\\\cloudflared.exe'``."""
    name = fields[atom["field"]] if atom.get("field") is not None else "<keyword: any string column>"
    op = atom["op"]
    cased = " (cased)" if atom.get("cased") else ""
    if op == "str":
        return f"{name} {_ANCHOR_WORD[atom['anchor']]} {_lit(atom['value'])}{cased}"
    if op == "glob":
        pattern = "".join(p["lit"] if isinstance(p, dict) else ("*" if p == "many" else "?") for p in atom["parts"])
        return f"{name} glob {_lit(pattern)}{cased}"
    if op == "re":
        flags = f" flags={atom['flags']}" if atom.get("flags") else ""
        return f"{name} regex {_lit(atom['pattern'])}{flags}"
    if op == "cidr":
        return f"{name} in network {atom['network']}"
    if op == "num":
        return f"{name} {({'eq': '==', 'gt': '>', 'gte': '>=', 'lt': '<', 'lte': '<='})[atom['cmp']]} {atom['value']}"
    if op == "bool":
        return f"{name} is {atom['value']}"
    if op == "null":
        return f"{name} is null (absent)"
    if op == "exists":
        return f"{name} exists"
    if op == "fieldref":
        return f"{name} {_ANCHOR_WORD[atom['anchor']]} the value of field {fields[atom['other']]}"
    if op == "time":
        return f"{name} {atom['part']} == {atom['value']}"
    return json.dumps(atom)


def _table_of(matcher: Any, atom: Atom) -> str:
    """Which engine structure an atom goes to."""
    op = atom["op"]
    if op == "str":
        return f"literal table, {atom['anchor']}{', cased' if atom.get('cased') else ', case-folded'}"
    if op in ("glob", "re"):
        kind = "glob" if op == "glob" else "regex"
        need = matcher.atom_triggers(atom) or []
        if not need:
            return f"{kind}, no required literal: run on every value"
        return f"{kind}, run only on values holding {' or '.join(_lit(t) for t in need[:5])}" + (
            f" or {len(need) - 5} more" if len(need) > 5 else ""
        )
    return "direct test"


def _tree(expr: Expr, atoms: Sequence[Atom], fields: Sequence[str], depth: int = 0) -> list[str]:
    pad = "  " * depth
    if "atom" in expr:
        return [f"{pad}[a{expr['atom']}] {atom_text(atoms[expr['atom']], fields)}"]
    if "const" in expr:
        return [f"{pad}{'TRUE' if expr['const'] else 'FALSE'}"]
    if "not" in expr:
        inner = _tree(expr["not"], atoms, fields, depth + 1)
        if len(inner) == 1:
            return [f"{pad}NOT {inner[0].strip()}"]
        return [f"{pad}NOT"] + inner
    op = "AND" if "and" in expr else "OR"
    lines = [f"{pad}{op}"]
    for child in children(expr):
        lines += _tree(child, atoms, fields, depth + 1)
    return lines


def _atom_key(atom: Atom, fields: Sequence[str]) -> str:
    key = dict(atom)
    if key.get("field") is not None:
        key["field"] = fields[key["field"]]
    if key["op"] == "fieldref":
        key["other"] = fields[key["other"]]
    return json.dumps(key, sort_keys=True)


def explain(matcher: Any, rule_index: int, others: Any = None, show_shared: int = 3) -> str:
    """The readable program of rule `rule_index` of `matcher` and the engine's plan for it;
    `others` (a Program) is the set whose rules sharing an atom are named (defaults to the
    matcher's program itself when it holds more than this rule)."""
    program = matcher.program
    data = program.data
    rule = data["rules"][rule_index]
    atoms, fields = data["atoms"], data["fields"]
    used = list(dict.fromkeys(atom_ids(rule["condition"])))
    positive = set(atom_ids(rule["condition"], positive_only=True))
    out = [f"{rule['title']} ({rule['id']})"]
    meta = [f"{k}: {rule[k]}" for k in ("level", "status") if rule.get(k)]
    if rule.get("logsource"):
        meta.append("logsource: " + ", ".join(f"{k}={v}" for k, v in rule["logsource"].items()))
    if meta:
        out.append("  " + "; ".join(meta))
    if rule.get("source"):
        out.append(f"  source: {rule['source']}")
    out += ["", f"Columns read: {', '.join(fields[f] for f in rule['fields']) or '(none)'}", "",
            "Condition:"]
    out += ["  " + line for line in _tree(rule["condition"], atoms, fields)]

    # Sharing across a rule set.
    sharing: dict[int, list[str]] = {}
    ref = others if others is not None else (program if len(data["rules"]) > 1 else None)
    if ref is not None:
        users: dict[str, list[str]] = defaultdict(list)
        ref_atoms, ref_fields = ref.data["atoms"], ref.data["fields"]
        for r in ref.data["rules"]:
            if r["id"] == rule["id"]:
                continue
            for a in dict.fromkeys(atom_ids(r["condition"])):
                users[_atom_key(ref_atoms[a], ref_fields)].append(r["title"])
        for a in used:
            sharing[a] = users.get(_atom_key(atoms[a], fields), [])

    needs, witness, lazy = matcher.rule_plan(rule_index)
    out += ["", f"Atoms by column ({len(used)}):"]
    by_field: dict[str, list[int]] = defaultdict(list)
    for a in used:
        f = atoms[a].get("field")
        by_field[fields[f] if f is not None else "<keywords>"].append(a)
    for name, ids in by_field.items():
        out.append(f"  {name} ({len(ids)} atom{'s' if len(ids) > 1 else ''})")
        for a in ids:
            atom = atoms[a]
            sign = "" if a in positive else "  [only under NOT]"
            line = f"    a{a:<6} {_describe(atom)}{sign}"
            out.append(line)
            table = "lazy: tested directly, only where the rule's needed atoms hit" if a in lazy else _table_of(matcher, atom)
            out.append(f"    {'':7} -> {table}")
            if a in sharing:
                shared = sharing[a]
                if shared:
                    names = "; ".join(shared[:show_shared]) + (f"; ... {len(shared) - show_shared} more"
                                                              if len(shared) > show_shared else "")
                    out.append(f"    {'':7} shared with {len(shared)} other rule{'s' if len(shared) > 1 else ''}: {names}")
                else:
                    out.append(f"    {'':7} used by no other rule of the set")

    out.append("")
    if witness is None:
        out.append("Witness: none. A match may have no positive atom true (a `not` carries it), "
                   "so the rule is evaluated on every row.")
    elif not witness:
        out.append("Witness: the condition is never true.")
    else:
        which = "this atom" if len(witness) == 1 else f"one of these {len(witness)} atoms"
        out.append(f"Witness: every match has {which} true; the rule is evaluated only where it hits:")
        out += [f"  a{a:<6} {atom_text(atoms[a], fields)}" for a in witness]
    if len(needs) > 1:
        out.append(f"Also needed ({len(needs) - 1} more set{'s' if len(needs) > 2 else ''}, one atom of each "
                   "in every match):")
        out += ["  " + " or ".join(f"a{a}" for a in n) for n in needs if n != witness]
    if lazy:
        out.append("Lazy: tested only on the rows where every needed set hit:")
        out += [f"  a{a:<6} {atom_text(atoms[a], fields)}" for a in lazy]
    return "\n".join(out)


def _describe(atom: Atom) -> str:
    op = atom["op"]
    if op == "str":
        return f"{_ANCHOR_WORD[atom['anchor']]:<10} {_lit(atom['value'])}{'  (cased)' if atom.get('cased') else ''}"
    if op == "glob":
        pattern = "".join(p["lit"] if isinstance(p, dict) else ("*" if p == "many" else "?") for p in atom["parts"])
        return f"{'glob':<10} {_lit(pattern)}{'  (cased)' if atom.get('cased') else ''}"
    if op == "re":
        return f"{'regex':<10} {_lit(atom['pattern'])}{('  flags ' + atom['flags']) if atom.get('flags') else ''}"
    return f"{op:<10} " + ", ".join(f"{k}={v}" for k, v in atom.items() if k not in ("op", "field"))


# --------------------------------------------------------------------------------------
# The command
# --------------------------------------------------------------------------------------


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("rule", metavar="RULE",
                   help="a rule file; with --rules also a rule id, title or file name of the set")
    p.add_argument("--rules", "-r", nargs="+", action="extend", metavar="PATH",
                   help="a rule set (files, folders, or a compiled program .json): name the atoms "
                        "the rule shares with it")
    p.add_argument("--pipeline", "-p", action="append", default=[], metavar="NAME_OR_FILE",
                   help="pySigma processing pipeline(s), as for scan")
    p.add_argument("--show-shared", type=int, default=3, metavar="N",
                   help="rule titles listed per shared atom (default: 3)")
    p.add_argument("--json", action="store_true", help="print the rule's program as JSON instead")


def _compile(specs: Sequence[str], pipeline: Sequence[str]) -> Any:
    from sigmarrow.cache import compile_or_load

    return compile_or_load(specs, {"pipeline": list(pipeline) or None}).matcher


def _find(matcher: Any, name: str) -> list[int]:
    low = name.lower()
    exact = [r.index for r in matcher.rules if low in (r.id.lower(), r.title.lower())
             or (r.source and Path(r.source).name.lower() in (low, low + ".yml"))
             or (r.source and Path(r.source).stem.lower() == low)]
    if exact:
        return exact
    return [r.index for r in matcher.rules if low in r.title.lower()]


def run(args: argparse.Namespace) -> int:
    pipeline = args.pipeline
    rule_path = Path(args.rule)
    the_set = _compile(args.rules, pipeline) if args.rules else None
    if rule_path.exists():  # a rule file, a folder of rules (each explained), a program
        matcher = _compile([str(rule_path)], pipeline)
        indices = list(range(len(matcher.rules)))
    elif the_set is not None:
        matcher = the_set
        indices = _find(matcher, args.rule)
    else:
        print(f"sigmarrow explain: no rule file or folder {args.rule!r} (to name a rule by id or "
              "title, give the set with --rules)", file=sys.stderr)
        return 2
    for e in matcher.errors:
        print(f"sigmarrow explain: rule not compiled: {e}", file=sys.stderr)
    if not indices:
        print(f"sigmarrow explain: no rule matches {args.rule!r}", file=sys.stderr)
        return 2
    if len(indices) > 5 and not rule_path.exists():
        print(f"sigmarrow explain: {len(indices)} rules match {args.rule!r}; be more precise:", file=sys.stderr)
        for i in indices[:20]:
            print(f"  {matcher.rules[i].id}  {matcher.rules[i].title}", file=sys.stderr)
        return 2
    blocks = []
    for i in indices:
        if args.json:
            alone = matcher.program.subprogram([matcher.program.rules[i]])
            blocks.append(json.dumps(alone.data, indent=1, ensure_ascii=False))
        else:
            others = the_set.program if the_set is not None else None
            blocks.append(explain(matcher, i, others, args.show_shared))
    print(("\n\n" + "=" * 80 + "\n\n").join(blocks))
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sigmarrow.explain", description=__doc__.split("\n\n")[0])
    add_arguments(parser)
    raise SystemExit(run(parser.parse_args()))

