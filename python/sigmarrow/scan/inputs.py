"""Input discovery: paths, folders, globs and URIs -> the files to scan, each with its format.

Every file is read on its own, so that hits can name their file and row, a bad file can be
skipped, and files of one dataset may differ in schema. Hive partition folders
(``date=2024-01-01/``) become string columns of their files, as ``pyarrow.dataset`` would
make them. Local folders are walked following symbolic links, but each folder is entered
once (by its real path) and each file is scanned once, so that a link loop ends.
"""

from __future__ import annotations

import fnmatch
import glob as globlib
import os
import re
import stat
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.fs as pafs

from sigmarrow.errors import SigmarrowError

__all__ = ["InputFile", "discover_inputs", "reason"]

_EXTENSIONS = {
    ".parquet": "parquet",
    ".parq": "parquet",
    ".pq": "parquet",
    ".arrow": "ipc",
    ".arrows": "ipc",
    ".feather": "ipc",
    ".ipc": "ipc",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",  # JSON Lines, concatenated JSON objects, or an array of them
    ".evtx": "evtx",
}
_GLOB_CHARS = frozenset("*?[")
# "/arrow/cpp/src/arrow/io/file.cc:110  ReadAt(...)", as pyarrow's debug builds add.
_SOURCE_LOCATION = re.compile(r"\S+\.(?:cc|cpp|h|hpp):\d+\b")


@dataclass(frozen=True)
class InputFile:
    """One file to scan."""

    display: str  #: the name hits and messages use: as the user wrote it, or inside a folder
    filesystem: pafs.FileSystem = field(repr=False, compare=False)
    path: str  #: the path on ``filesystem``
    kind: str  #: ``parquet``, ``ipc``, ``jsonl`` (JSON Lines), ``json`` (any JSON) or ``evtx``
    size: int
    #: hive partition values from the folders above the file (``key=value``); None = null
    partition: tuple[tuple[str, str | None], ...] = ()


def _kind_from_name(name: str) -> str | None:
    lower = name.lower()
    for suffix in (".gz", ".zst", ".bz2"):  # compressed JSON: pyarrow decompresses
        if lower.endswith((".jsonl" + suffix, ".ndjson" + suffix)):
            return "jsonl"
        if lower.endswith(".json" + suffix):
            return "json"
    return _EXTENSIONS.get(os.path.splitext(lower)[1])


def _sniff(fs: pafs.FileSystem, path: str) -> str | None:
    """The format of a file without a known extension, from its first bytes."""
    try:
        with fs.open_input_stream(path) as f:
            head = f.read(8)
    except OSError:
        return None
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith((b"ARROW1", b"\xff\xff\xff\xff")):
        return "ipc"
    if head.startswith(b"ElfFile"):
        return "evtx"
    if head.lstrip()[:1] in (b"{", b"["):
        return "json"
    return None


def _is_hidden(relative: str) -> bool:
    # Like pyarrow.dataset: files and folders starting with "." or "_" are metadata
    # (_SUCCESS, _delta_log/, .part-0.parquet.crc), not data.
    return any(part.startswith((".", "_")) for part in relative.split("/") if part)


def _partition(relative_dir: str) -> tuple[tuple[str, str | None], ...]:
    keys = []
    for part in relative_dir.split("/"):
        key, sep, value = part.partition("=")
        if sep and key:
            value = urllib.parse.unquote(value)
            keys.append((key, None if value == "__HIVE_DEFAULT_PARTITION__" else value))
    return tuple(keys)


def _resolve_fs(spec: str) -> tuple[pafs.FileSystem, str, bool]:
    """The filesystem and path of an input, and whether it is a URI."""
    if "://" in spec and not os.path.exists(spec):
        try:
            fs, path = pafs.FileSystem.from_uri(spec)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError, ValueError) as exc:
            raise SigmarrowError(f"cannot open input {spec}: {reason(exc)}") from None
        return fs, path, True
    return pafs.LocalFileSystem(), os.path.abspath(spec), False


def _files_under(
    fs: pafs.FileSystem, base: str, shown: str, uri: bool
) -> tuple[list[InputFile], int]:
    """Data files in a folder (recursive), and how many other files were ignored."""
    try:
        if isinstance(fs, pafs.LocalFileSystem):  # also file:// URIs
            listed = _walk(base)
        else:
            infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
            listed = [(i.path, i.size or 0) for i in infos if i.type == pafs.FileType.File]
    except OSError as exc:
        raise SigmarrowError(f"cannot list input folder {shown}: {reason(exc)}") from None
    files, ignored = [], 0
    for path, size in sorted(listed):
        relative = path[len(base) :].lstrip("/")
        if _is_hidden(relative):
            continue
        kind = _kind_from_name(os.path.basename(path)) or _sniff(fs, path)
        if kind is None:
            ignored += 1
            continue
        display = shown.rstrip("/") + "/" + relative if uri else os.path.join(shown, relative)
        files.append(InputFile(display, fs, path, kind, size, _partition(os.path.dirname(relative))))
    return files, ignored


def _walk(folder: str, entered: set[str] | None = None) -> list[tuple[str, int]]:
    """(path, size) of the regular files below a local folder, hidden ones left out. Links
    are followed, but never into a folder already entered (by its real path)."""
    entered = entered if entered is not None else {os.path.realpath(folder or ".")}
    found = []
    with os.scandir(folder or ".") as scanned:
        entries = sorted(scanned, key=lambda e: e.name)
    for entry in entries:
        if _is_hidden(entry.name):
            continue
        path = os.path.join(folder, entry.name)
        if entry.is_dir():
            real = os.path.realpath(path)
            if real not in entered:
                entered.add(real)
                found += _walk(path, entered)
        elif entry.is_file():
            found.append((path, entry.stat().st_size))
    return found


def _glob(pattern: str) -> list[str]:
    """The paths a glob matches, sorted. glob's ``**`` follows links round a loop (and
    doubles at every level of two loops), so a recursive pattern walks instead."""
    if "**" not in pattern:
        return sorted(globlib.glob(pattern))
    base = _glob_base(pattern)
    parts = pattern[len(base) :].lstrip("/").split("/")
    return [
        path
        for path, _ in sorted(_walk(base))
        if _glob_match(parts, path[len(base) :].lstrip("/").split("/"))
    ]


def _glob_base(pattern: str) -> str:
    """The folder where a glob pattern starts, as written ('' for the current one)."""
    return os.path.dirname(pattern[: min(pattern.index(c) for c in _GLOB_CHARS if c in pattern)])


def _glob_match(parts: list[str], names: list[str]) -> bool:
    """Whether a file's path (its folder and file names) matches the pattern's parts, or
    lies in a folder that does (as glob's folders are read whole); ``**``: any folders."""
    if not parts:
        return True
    if not names:
        return all(p == "**" for p in parts)
    if parts[0] == "**":
        return _glob_match(parts[1:], names) or _glob_match(parts, names[1:])
    return fnmatch.fnmatchcase(names[0], parts[0]) and _glob_match(parts[1:], names[1:])


def _not_a_file(spec: str, path: str) -> str:
    """Why an input that exists is neither a file nor a folder."""
    mode = os.stat(path).st_mode
    what = (
        "a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
        else "a device"
    )
    return (
        f"input {spec} is {what}, not a file: the scan reads files (Parquet and EVTX are "
        "read out of order); save the data to a file first"
    )


def discover_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[InputFile], int]:
    """Expand input paths, folders, globs and URIs into the files to scan.

    Returns the files (in the order given, each folder sorted by path) and the number of
    files inside folders that were ignored because they are not data files. Raises
    :class:`sigmarrow.SigmarrowError` for an input that does not exist, a folder or glob
    without data files, or a file whose format cannot be told.
    """
    files: list[InputFile] = []
    ignored = 0
    seen: set[str] = set()
    for raw in inputs:
        spec = os.fspath(raw)
        found: list[InputFile] = []
        fs, path, uri = _resolve_fs(spec)
        try:
            info = fs.get_file_info(path)
        except OSError as exc:
            raise SigmarrowError(f"cannot open input {spec}: {reason(exc)}") from None
        if info.type == pafs.FileType.File:
            kind = _kind_from_name(info.base_name) or _sniff(fs, path)
            if kind is None:
                raise SigmarrowError(
                    f"cannot tell the format of input {spec}: name it .parquet, .arrow, "
                    ".jsonl or .evtx"
                )
            found.append(InputFile(spec, fs, path, kind, info.size or 0))
        elif info.type == pafs.FileType.Directory:
            found, n = _files_under(fs, path, spec, uri)
            ignored += n
            if not found:
                raise SigmarrowError(
                    f"input folder {spec} holds no data files (.parquet, .arrow, .jsonl, .evtx)"
                )
        elif not uri and info.type == pafs.FileType.Unknown and os.path.exists(path):
            raise SigmarrowError(_not_a_file(spec, path))
        elif not uri and _GLOB_CHARS & set(spec):
            matches = _glob(spec)
            if not matches:
                raise SigmarrowError(f"input not found: no file matches {spec}")
            # Hive keys count from the folder where the pattern starts.
            base = os.path.abspath(_glob_base(spec) or ".")
            for match in matches:
                if os.path.isdir(match):
                    more, n = _files_under(fs, os.path.abspath(match), match, False)
                    found += more
                    ignored += n
                    continue
                kind = _kind_from_name(match) or _sniff(fs, os.path.abspath(match))
                if kind is None:
                    ignored += 1
                    continue
                relative = os.path.relpath(os.path.abspath(match), base).replace(os.sep, "/")
                found.append(
                    InputFile(
                        match,
                        fs,
                        os.path.abspath(match),
                        kind,
                        os.path.getsize(match),
                        _partition(os.path.dirname(relative)),
                    )
                )
            if not found:
                raise SigmarrowError(f"input {spec} matches no data files")
        else:
            raise SigmarrowError(f"input not found: {spec}")
        for f in found:
            # The same file named twice (or reached through a link) is scanned once.
            local = isinstance(f.filesystem, pafs.LocalFileSystem)
            key = os.path.realpath(f.path) if local else f.path
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, ignored


def reason(exc: BaseException) -> str:
    """The message of an exception as one readable line."""
    lines = []
    for line in (str(exc).strip() or type(exc).__name__).splitlines():
        line = line.strip()
        # pyarrow appends C++ source locations on debug builds; users do not need them.
        if line and not _SOURCE_LOCATION.match(line):
            lines.append(line)
    text = "; ".join(lines) or type(exc).__name__
    # Corrupt data can put control bytes into a message: show them escaped.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
