"""Make ``examples/process_creation.parquet``: 1,000 synthetic Sysmon process-creation events.

The events look like Sysmon EventID 1 records (the field names Sigma rules use). Five of
them run cloudflared, at fixed rows, so that the rules in ``examples/rules/`` have known
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

import random
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

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

_BENIGN = [
    (
        r"C:\Windows\System32\svchost.exe",
        r"C:\Windows\system32\svchost.exe -k netsvcs -p -s Schedule",
        r"C:\Windows\System32\services.exe",
    ),
    (
        r"C:\Windows\System32\conhost.exe",
        r"\??\C:\Windows\system32\conhost.exe 0xffffffff -ForceV1",
        r"C:\Windows\System32\cmd.exe",
    ),
    (
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
        r'"C:\Program Files\Google\Chrome\Application\chrome.exe" --type=renderer --lang=en-US',
        r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    ),
    (
        r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
        r'powershell.exe -NoProfile -Command "Get-Service | Where-Object Status -eq Running"',
        r"C:\Windows\explorer.exe",
    ),
    (
        r"C:\Windows\System32\cmd.exe",
        r'cmd.exe /c "dir C:\Users\Public"',
        r"C:\Windows\explorer.exe",
    ),
    (
        r"C:\Windows\System32\taskhostw.exe",
        r"taskhostw.exe Install $(Arg0)",
        r"C:\Windows\System32\svchost.exe",
    ),
    (
        r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
        r'"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\alice\report.docx"',
        r"C:\Windows\explorer.exe",
    ),
    (
        r"C:\Windows\System32\SearchProtocolHost.exe",
        r'"C:\Windows\system32\SearchProtocolHost.exe" Global\UsGthrFltPipeMssGthrPipe1',
        r"C:\Windows\System32\SearchIndexer.exe",
    ),
    (
        r"C:\Windows\System32\git.exe",
        r"git.exe fetch --all --prune",
        r"C:\Windows\System32\cmd.exe",
    ),
    (
        r"C:\Tools\tunnelmgr.exe",
        r"C:\Tools\tunnelmgr.exe status --url-list none",
        r"C:\Windows\explorer.exe",
    ),
]
_HOSTS = [
    "WS-0142.corp.example",
    "WS-0177.corp.example",
    "SRV-DC01.corp.example",
    "LAPTOP-ALICE.corp.example",
]
_USERS = [r"CORP\alice", r"CORP\bob", r"NT AUTHORITY\SYSTEM", r"NT AUTHORITY\NETWORK SERVICE"]


def _hashes(rng: random.Random) -> str:
    def hexa(n: int) -> str:
        return "".join(rng.choice("0123456789ABCDEF") for _ in range(n))

    return f"SHA1={hexa(40)},MD5={hexa(32)},SHA256={hexa(64)},IMPHASH={hexa(32)}"


def make_table() -> pa.Table:
    rng = random.Random(20231220)
    start = datetime(2024, 5, 1, 8, 0, 0)
    columns: dict[str, list[object]] = {
        name: []
        for name in (
            "UtcTime",
            "EventID",
            "Computer",
            "ProcessId",
            "Image",
            "OriginalFileName",
            "CommandLine",
            "CurrentDirectory",
            "User",
            "IntegrityLevel",
            "Hashes",
            "ParentProcessId",
            "ParentImage",
            "ParentCommandLine",
        )
    }
    for row in range(ROWS):
        image, command_line, parent = CLOUDFLARED.get(row) or rng.choice(_BENIGN)
        when = start + timedelta(
            seconds=row * 37 + rng.randint(0, 30), milliseconds=rng.randint(0, 999)
        )
        columns["UtcTime"].append(when.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3])
        columns["EventID"].append(1)
        columns["Computer"].append(rng.choice(_HOSTS))
        columns["ProcessId"].append(rng.randint(100, 65000))
        columns["Image"].append(image)
        columns["OriginalFileName"].append(image.rsplit("\\", 1)[1])
        columns["CommandLine"].append(command_line)
        columns["CurrentDirectory"].append("C:\\Windows\\system32\\")
        columns["User"].append(rng.choice(_USERS))
        columns["IntegrityLevel"].append(rng.choice(["Medium", "High", "System"]))
        columns["Hashes"].append(_hashes(rng))
        columns["ParentProcessId"].append(rng.randint(100, 65000))
        columns["ParentImage"].append(parent)
        columns["ParentCommandLine"].append(parent)
    types = {"EventID": pa.int64(), "ProcessId": pa.int64(), "ParentProcessId": pa.int64()}
    return pa.table({k: pa.array(v, type=types.get(k, pa.string())) for k, v in columns.items()})


def main() -> None:
    table = make_table()
    pq.write_table(table, OUT, compression="zstd", row_group_size=500)
    print(f"wrote {OUT} ({table.num_rows} rows)")


if __name__ == "__main__":
    main()
