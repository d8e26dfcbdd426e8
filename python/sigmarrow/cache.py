"""Compiled rule sets, reused: a program file given where rules are expected, and a cache.

The cache keeps the program a compile produced under a key made of everything the program
depends on: every rule file's path and content, the pipelines (names, with the versions of the
installed plugins, or file contents), the log-source declaration, the selection, and the
versions of sigmarrow and pySigma. The same inputs give the same key, so a scan of the same rule
files starts matching at once; any change gives a new key (old entries are never reused, and
`prune` keeps the folder small). Rules given as YAML text or pySigma objects are not cached.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from sigmarrow.errors import ProgramError, UsageError
from sigmarrow.program import FORMAT
from sigmarrow.rulefiles import rule_files

#: Entries kept in the cache folder; the oldest beyond this are removed.
MAX_ENTRIES = 32
PROGRAM_SUFFIXES = (".sigmarrow", ".json")


def cache_dir() -> Path:
    """`$XDG_CACHE_HOME/sigmarrow`, or `~/.cache/sigmarrow`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sigmarrow"


def is_program_file(path: str | Path) -> bool:
    """Is `path` a compiled program (sigmarrow compile's output, Matcher.save's)?"""
    p = Path(path)
    if p.suffix not in PROGRAM_SUFFIXES or not p.is_file():
        return False
    with p.open("rb") as f:
        head = f.read(256)
    return FORMAT.encode() in head


@dataclass(frozen=True)
class Compiled:
    matcher: Any  #: sigmarrow.Matcher
    how: str  #: "compiled", "from the cache", "loaded <file>"
    seconds: float


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "?"


def _rule_files(sources: Sequence[str | Path]) -> list[Path] | None:
    files: list[Path] = []
    for source in sources:
        path = Path(source)
        if not path.exists():
            return None  # not paths: not cacheable (the compile reports what is wrong)
        files += rule_files(path)
    return files


@functools.cache
def _code_digest() -> str:
    """sigmarrow's version and its own code: a compiler changed in a checkout (same version
    number) must not reuse programs the old one wrote."""
    digest = hashlib.sha256(_version("sigmarrow").encode())
    package = Path(__file__).resolve().parent
    for f in sorted([*package.rglob("*.py"), *package.rglob("*.yml")]):
        digest.update(f.read_bytes())
    return digest.hexdigest()


def cache_key(sources: Sequence[str | Path], settings: dict[str, Any]) -> str | None:
    """The key of a compile of rule files with these settings (pipelines, log sources,
    selection, ...), or None when the sources are not all files and folders."""
    files = _rule_files(sources)
    if files is None:
        return None
    digest = hashlib.sha256()
    # Pipelines named by plugin: the installed plugin versions decide what they do.
    plugins = sorted(
        f"{d.metadata['Name']}=={d.version}"
        for d in metadata.distributions()
        if d.metadata["Name"] and d.metadata["Name"].lower().startswith("pysigma")
    )
    digest.update(repr((_code_digest(), plugins, sorted(settings.items(), key=str))).encode())
    # Pipeline files by content; the built-in ones are in the code digest already.
    for pipeline in settings.get("pipeline") or ():
        if Path(pipeline).is_file():
            digest.update(Path(pipeline).read_bytes())
    filters = _rule_files(settings.get("filters") or ())
    if filters is None:
        return None
    for f in [*files, *filters]:
        digest.update(os.path.abspath(f).encode() + b"\0")
        digest.update(hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()[:32]


def compile_or_load(
    sources: Sequence[str], settings: dict[str, Any], use_cache: bool = True
) -> Compiled:
    """A Matcher for the rules: a program file loaded as it is, else a cached compile of the
    same inputs, else a fresh compile (then cached). `settings` are `sigmarrow.compile`'s
    keyword arguments; they must be plain values (repr is part of the key)."""
    import sigmarrow

    start = time.perf_counter()
    programs = [s for s in sources if is_program_file(s)]
    if programs:
        if len(sources) > 1:
            raise UsageError(
                f"{programs[0]} is a compiled program: give it alone, not with other rules"
            )
        return Compiled(sigmarrow.Matcher.load(programs[0]), f"loaded {programs[0]}",
                        time.perf_counter() - start)
    key = cache_key(sources, settings) if use_cache else None
    cached = load_cached(key) if key else None
    if cached is not None:
        return Compiled(cached, "from the cache", time.perf_counter() - start)
    matcher = sigmarrow.compile(list(sources), **settings)
    if key:
        store(key, matcher)
    return Compiled(matcher, "compiled", time.perf_counter() - start)


def load_cached(key: str) -> Any | None:
    """The cached Matcher of `key`, or None (absent, or unreadable: compiled again)."""
    from sigmarrow.matcher import Matcher

    path = cache_dir() / f"{key}.sigmarrow"
    try:
        return Matcher.load(path)
    except (OSError, ProgramError):
        return None


def store(key: str, matcher: Any) -> None:
    """Writes the program atomically (a concurrent reader sees the old file or the new one);
    a cache that cannot be written is skipped, never an error."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".sigmarrow")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(matcher.to_bytes())
        os.replace(tmp, folder / f"{key}.sigmarrow")
        prune(folder)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)


def prune(folder: Path, keep: int = MAX_ENTRIES) -> None:
    entries = sorted(folder.glob("*.sigmarrow"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        old.unlink(missing_ok=True)
