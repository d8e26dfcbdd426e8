"""The one import rule import-linter cannot check (it sees only .py modules): the extension
`sigmarrow._engine` is imported by `sigmarrow.matcher` alone. The other contracts are in
pyproject.toml and run by `lint-imports` (make lint)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "python" / "sigmarrow"


def _imports_engine(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "sigmarrow._engine" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom):
            if node.module == "sigmarrow._engine" or (
                node.module == "sigmarrow" and any(a.name == "_engine" for a in node.names)
            ):
                return True
            if node.level and any(a.name == "_engine" for a in node.names):
                return True
    return False


def test_only_the_matcher_imports_the_extension() -> None:
    users = sorted(
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if _imports_engine(ast.parse(path.read_text(encoding="utf-8")))
    )
    assert users == ["matcher.py"]


def test_the_check_sees_an_engine_import() -> None:
    assert _imports_engine(ast.parse("from sigmarrow import _engine"))
    assert _imports_engine(ast.parse("import sigmarrow._engine as e"))
    assert not _imports_engine(ast.parse("from sigmarrow import matcher"))
