"""Input discovery: paths, folders, globs and URIs -> the files to scan, each with its format.

Every file is read on its own, so that hits can name their file and row, a bad file can be
skipped, and files of one dataset may differ in schema. Hive partition folders
(``date=2024-01-01/``) become string columns of their files, as ``pyarrow.dataset`` would
make them.
"""

from __future__ import annotations

import glob as globlib
import os
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
    ".json": "jsonl",
    ".evtx": "evtx",
}
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class InputFile:
    """One file to scan."""

    display: str  #: the name hits and messages use: as the user wrote it, or inside a folder
    filesystem: pafs.FileSystem = field(repr=False, compare=False)
    path: str  #: the path on ``filesystem``
    kind: str  #: ``parquet``, ``ipc``, ``jsonl`` or ``evtx``
    size: int
    #: hive partition values from the folders above the file (``key=value``); None = null
    partition: tuple[tuple[str, str | None], ...] = ()


def _kind_from_name(name: str) -> str | None:
    lower = name.lower()
    for suffix in (".gz", ".zst", ".bz2"):  # compressed JSON Lines: pyarrow decompresses
        if lower.endswith((".jsonl" + suffix, ".ndjson" + suffix)):
            return "jsonl"
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
    if head.lstrip()[:1] == b"{":
        return "jsonl"
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
    selector = pafs.FileSelector(base, recursive=True)
    try:
        infos = fs.get_file_info(selector)
    except OSError as exc:
        raise SigmarrowError(f"cannot list input folder {shown}: {reason(exc)}") from None
    files, ignored = [], 0
    for info in sorted(infos, key=lambda i: i.path):
        if info.type != pafs.FileType.File:
            continue
        relative = info.path[len(base) :].lstrip("/")
        if _is_hidden(relative):
            continue
        kind = _kind_from_name(info.base_name) or _sniff(fs, info.path)
        if kind is None:
            ignored += 1
            continue
        display = shown.rstrip("/") + "/" + relative if uri else os.path.join(shown, relative)
        files.append(
            InputFile(
                display, fs, info.path, kind, info.size or 0, _partition(os.path.dirname(relative))
            )
        )
    return files, ignored


def discover_inputs(inputs: Sequence[str | os.PathLike[str]]) -> tuple[list[InputFile], int]:
    """Expand input paths, folders, globs and URIs into the files to scan.

    Returns the files (in the order given, each folder sorted by path) and the number of
    files inside folders that were ignored because they are not data files. Raises
    :class:`sigmarrow.SigmarrowError` for an input that does not exist, a folder or glob
    without data files, or a file whose format cannot be told.
    """
    files: list[InputFile] = []
    ignored = 0
    seen: set[tuple[str, str]] = set()
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
        elif not uri and _GLOB_CHARS & set(spec):
            matches = sorted(globlib.glob(spec, recursive=True))
            if not matches:
                raise SigmarrowError(f"input not found: no file matches {spec}")
            # Hive keys count from the folder where the pattern starts.
            static = spec[: min(spec.index(c) for c in _GLOB_CHARS if c in spec)]
            base = os.path.abspath(os.path.dirname(static) or ".")
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
            if (f.kind, f.path) not in seen:  # the same file named twice is scanned once
                seen.add((f.kind, f.path))
                files.append(f)
    return files, ignored


def reason(exc: BaseException) -> str:
    """The message of an exception as one readable line."""
    lines = []
    for line in (str(exc).strip() or type(exc).__name__).splitlines():
        line = line.strip()
        # pyarrow appends C++ source locations on debug builds; users do not need them.
        if line and not line.startswith(("/", "arrow/")):
            lines.append(line)
    text = "; ".join(lines) or type(exc).__name__
    # Corrupt data can put control bytes into a message: show them escaped.
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
