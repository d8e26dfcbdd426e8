"""Make ``examples/process_creation.parquet``: 1,000 synthetic Sysmon process-creation events.

The events are those of the benches' generator (``benches/generate.py``: Sysmon EventID 1
records with the field names Sigma rules use), without its planted positives. Five of them
run cloudflared, at fixed rows, so that the rules in ``examples/rules/`` have known
answers:

=====  ======================================================================  ===========================
 row    Image / CommandLine                                                     rules that match
=====  ======================================================================  ===========================
 137    ``C:\\Users\\alice\\Downloads\\cloudflared.exe tunnel run --token ...``   portable, tunnel run
 402    ``C:\\ProgramData\\cf\\CLOUDFLARED.EXE tunnel --url ... --no-autoupdate``   portable, quick tunnel
 655    ``C:\\Program Files\\cloudflared\\cloudflared.exe tunnel run --token ...``  tunnel run
 808    ``C:\\Program Files (x86)\\cloudflared\\cloudflared.exe --version``         (none)
 951    ``C:\\Users\\bob\\AppData\\Local\\Temp\\cloudflared.exe update``            portable
=====  ======================================================================  ===========================

Run ``python examples/make_example.py``; the output is deterministic (same bytes each run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benches"))
from generate import generate_events  # benches/ is a folder of scripts, not a package

ROWS = 1000
OUT = Path(__file__).resolve().parent / "process_creation.parquet"

#: row -> (Image, CommandLine, ParentImage)
CLOUDFLARED = {
    137: (
        r"C:\Users\alice\Downloads\cloudflared.exe",
        r"C:\Users\alice\Downloads\cloudflared.exe tunnel run --token eyJhIjoiZXhhbXBsZSJ9",
        r"C:\Windows\System32\cmd.exe",
    ),
    402: (
        r"C:\ProgramData\cf\CLOUDFLARED.EXE",
        r"C:\ProgramData\cf\CLOUDFLARED.EXE tunnel --url http://localhost:3389 --no-autoupdate",
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    ),
    655: (
        r"C:\Program Files\cloudflared\cloudflared.exe",
        r'"C:\Program Files\cloudflared\cloudflared.exe" tunnel run --token eyJhIjoib2sifQ',
        r"C:\Windows\System32\services.exe",
    ),
    808: (
        r"C:\Program Files (x86)\cloudflared\cloudflared.exe",
        r'"C:\Program Files (x86)\cloudflared\cloudflared.exe" --version',
        r"C:\Windows\explorer.exe",
    ),
    951: (
        r"C:\Users\bob\AppData\Local\Temp\cloudflared.exe",
        r"C:\Users\bob\AppData\Local\Temp\cloudflared.exe update",
        r"C:\Windows\explorer.exe",
    ),
}

#: Expected hits per rule title over the file (checked by the tests and docs/scan.md).
EXPECTED = {
    "Cloudflared Portable Execution": [137, 402, 951],
    "Cloudflared Tunnel Execution": [137, 655],
    "Cloudflared Quick Tunnel Execution": [402],
}


def make_table() -> pa.Table:
    """The benign events of ``benches/generate.py`` with the cloudflared runs at their rows."""
    fixed = {
        row: {
            "Image": image,
            "OriginalFileName": "cloudflared.exe",
            "Description": "Cloudflared",
            "Product": "Cloudflared",
            "Company": "Cloudflare, Inc.",
            "CommandLine": command_line,
            "ParentImage": parent,
            "ParentCommandLine": parent,
        }
        for row, (image, command_line, parent) in CLOUDFLARED.items()
    }
    table, _ = generate_events(ROWS, seed=20231220, fixed=fixed)
    return table


def main() -> None:
    table = make_table()
    pq.write_table(table, OUT, compression="zstd", row_group_size=500)
    print(f"wrote {OUT} ({table.num_rows} rows)")


if __name__ == "__main__":
    main()
