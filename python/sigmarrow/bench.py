"""``sigmarrow bench``: the headline table of issue 3, measured on this machine in about a
minute, every number checked against an answer.

What it does, in order:

1. selects the Windows ``process_creation`` rules of a SigmaHQ checkout (the three main
   folders, ~1,415 rules) and compiles them;
2. generates realistic synthetic Sysmon process-creation events (:func:`generate_events`:
   a Zipf-like spread of a few thousand image paths, high-cardinality command lines of about
   54 bytes, real positives from ``regression_data/`` and events synthesized to satisfy
   randomly chosen rules), writes them as Parquet in a temporary folder and reads them back;
3. times sigmarrow over them with one thread and with all threads;
4. times DuckDB running pySigma's DuckDB-backend SQL, one ``count(*)`` query per rule, on a
   subsample, and compares the per-rule counts with sigmarrow's on the same rows;
5. times the Cloudflared rule alone (Image column) against DuckDB (1 thread),
   ``pyarrow.compute`` and polars, on plain and dictionary-encoded Image, comparing counts;
6. checks sigmarrow against the Python reference evaluator (``sigmarrow.reference``) on a
   positive-rich sample: every hit sigmarrow reports, every planted positive and a random
   sample of the (event, rule) pairs it does not report; optionally (``--reference-events``)
   complete per-rule counts on the first N events.

Disagreements are printed, never hidden: the DuckDB backend has known semantic bugs
(``not`` over a missing field, unescaped ``%``/``_`` in ``ILIKE``, case-sensitive ``=``).

The generator also backs ``benches/generate.py``; ``benches/bench_engine.py`` runs the same
measurements at full size and writes ``benches/results/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import os
import platform
import random
import re
import shlex
import string
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

__all__ = [
    "CLOUDFLARED_RULE",
    "add_arguments",
    "find_sigma_dir",
    "generate_events",
    "image_column",
    "process_creation_files",
    "run",
]

RULE_FOLDERS = ("rules", "rules-emerging-threats", "rules-threat-hunting")

# ======================================================================================
# The rule corpus
# ======================================================================================


def find_sigma_dir(given: str | os.PathLike[str] | None = None) -> Path | None:
    """A SigmaHQ checkout: the given path, ``$SIGMARROW_SIGMA_DIR``, or ``shared/sigma``
    beside the source tree; None when none of these has the rule folders."""
    candidates = []
    if given:
        candidates.append(Path(given))
    if os.environ.get("SIGMARROW_SIGMA_DIR"):
        candidates.append(Path(os.environ["SIGMARROW_SIGMA_DIR"]))
    candidates.append(Path(__file__).resolve().parents[3] / "shared" / "sigma")
    for path in candidates:
        if (path / "rules").is_dir():
            return path.resolve()
    return None


_LOGSOURCE = re.compile(r"^logsource:[ \t]*\n((?:[ \t]+.*\n|[ \t]*\n)*)", re.MULTILINE)
_LOGSOURCE_FLOW = re.compile(r"^logsource:[ \t]*\{([^}]*)\}", re.MULTILINE)
_FLOW_KEY = re.compile(r"(category|product|service)\s*:\s*['\"]?([\w-]+)")
_KEY = re.compile(r"^[ \t]+(category|product|service):[ \t]*['\"]?([\w-]+)['\"]?", re.MULTILINE)


def logsource_of(text: str) -> dict[str, str]:
    """category/product/service of a rule file's top-level ``logsource:`` block (without a
    YAML parse: 30x faster over the corpus, and rules keep this block flat)."""
    found = _LOGSOURCE.search(text if text.endswith("\n") else text + "\n")
    if found:
        return {k: v for k, v in _KEY.findall(found.group(1))}
    flow = _LOGSOURCE_FLOW.search(text)  # logsource: {category: x, product: y}
    if flow:
        return {k: v for k, v in _FLOW_KEY.findall(flow.group(1))}
    return {}


def process_creation_files(sigma_dir: Path, folders: Sequence[str] = RULE_FOLDERS) -> list[Path]:
    """Rule files whose logsource is category process_creation, product windows."""
    files = []
    for folder in folders:
        for path in sorted((sigma_dir / folder).rglob("*")):
            if path.suffix not in (".yml", ".yaml") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8", errors="replace")
            if "process_creation" not in text:
                continue
            ls = logsource_of(text)
            if ls.get("category") == "process_creation" and ls.get("product") == "windows":
                files.append(path)
    return files


def all_rule_files(sigma_dir: Path) -> list[Path]:
    files: list[Path] = []
    for folder in RULE_FOLDERS:
        files.extend(p for p in (sigma_dir / folder).rglob("*") if p.suffix in (".yml", ".yaml"))
    return sorted(files)


# ======================================================================================
# Synthetic events
# ======================================================================================

#: The columns of a Sysmon EventID 1 as ``sigmarrow.evtx`` flattens it (all strings but
#: EventID), in this order.
COLUMNS = (
    "EventID", "Provider_Name", "Channel", "Computer", "UtcTime", "ProcessGuid", "ProcessId",
    "Image", "FileVersion", "Description", "Product", "Company", "OriginalFileName",
    "CommandLine", "CurrentDirectory", "User", "LogonGuid", "LogonId", "TerminalSessionId",
    "IntegrityLevel", "Hashes", "ParentProcessGuid", "ParentProcessId", "ParentImage",
    "ParentCommandLine", "ParentUser",
)
#: Columns with few distinct values: dictionary-encoded with ``dictionary=True``.
DICTIONARY_COLUMNS = (
    "Provider_Name", "Channel", "Computer", "Image", "FileVersion", "Description", "Product",
    "Company", "OriginalFileName", "CurrentDirectory", "User", "TerminalSessionId",
    "IntegrityLevel", "Hashes", "ParentImage", "ParentUser",
)

SYS32 = "C:\\Windows\\System32\\"
WOW64 = "C:\\Windows\\SysWOW64\\"
MS = "Microsoft Corporation"
WINPROD = "Microsoft\u00ae Windows\u00ae Operating System"
WINVER = "10.0.19041.{b} (WinBuild.160101.0800)"

# (file name, description, OriginalFileName or None for the name, command-line templates,
#  kind: s = runs as a service account, u = as the logged-on user, a = either)
# Templates: {n} a number, {n3} a small number, {h} 8 hex digits, {h5} 5, {g} a GUID, {u} the
# user name, {d} a document-like name, {ip} an address, {p} a port, {svc} a service name,
# {vendor}, {host}, {temp} the user's temp folder, {script} a .cmd path (see _FILLERS).
SYSTEM_BINARIES: list[tuple[str, str, str | None, tuple[str, ...], str]] = [
    ("svchost.exe", "Host Process for Windows Services", None,
     ("C:\\Windows\\system32\\svchost.exe -k netsvcs -p -s {svc}",
      "C:\\Windows\\system32\\svchost.exe -k LocalServiceNetworkRestricted -p",
      "C:\\Windows\\System32\\svchost.exe -k wsappx -p -s AppXSvc",
      "C:\\Windows\\system32\\svchost.exe -k UnistackSvcGroup -s CDPUserSvc_{h5}"), "s"),
    ("conhost.exe", "Console Window Host", "CONHOST.EXE",
     ("\\??\\C:\\Windows\\system32\\conhost.exe 0xffffffff -ForceV1",
      "\\??\\C:\\Windows\\system32\\conhost.exe 0x4"), "a"),
    ("RuntimeBroker.exe", "Runtime Broker", None,
     ("C:\\Windows\\System32\\RuntimeBroker.exe -Embedding",), "u"),
    ("backgroundTaskHost.exe", "Background Task Host", None,
     ("\"C:\\Windows\\system32\\backgroundTaskHost.exe\" -ServerName:{svc}.AppX{h}.mca",
      "\"C:\\Windows\\system32\\BackgroundTaskHost.exe\" -ServerName:BackgroundTaskHost.WebAccountProvider"), "u"),
    ("taskhostw.exe", "Host Process for Windows Tasks", None,
     ("taskhostw.exe {{{g}}}", "taskhostw.exe -RegisterDevice -ProtectionStateChanged -FreeNetworkOnly",
      "taskhostw.exe"), "a"),
    ("cmd.exe", "Windows Command Processor", "Cmd.Exe",
     ("C:\\Windows\\system32\\cmd.exe /c \"{script}\"", "cmd.exe /c echo {n} > {temp}\\out{n}.txt",
      "\"C:\\Windows\\system32\\cmd.exe\" ", "C:\\Windows\\system32\\cmd.exe /d /c {d}.bat",
      "cmd /c dir {temp}"), "a"),
    ("WindowsPowerShell\\v1.0\\powershell.exe", "Windows PowerShell", "PowerShell.EXE",
     ("\"C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe\" ",
      "powershell.exe -NoProfile -File C:\\scripts\\inventory{n}.ps1",
      "powershell.exe -ExecutionPolicy Bypass -File \"{temp}\\{d}.ps1\"",
      "\"powershell.exe\" -Command Get-Service {svc}"), "a"),
    ("SearchProtocolHost.exe", "Microsoft Windows Search Protocol Host", "SearchProtocolHost.exe",
     (("\"C:\\Windows\\system32\\SearchProtocolHost.exe\" Global\\UsGthrFltPipeMssGthrPipe{n}_ "
       "Global\\UsGthrCtrlFltPipeMssGthrPipe{n} 1 -2147483646 \"Software\\Microsoft\\Windows Search\""),), "s"),
    ("SearchFilterHost.exe", "Microsoft Windows Search Filter Host", None,
     ("\"C:\\Windows\\system32\\SearchFilterHost.exe\" 0 {n3} {n3} {n3} 8192 {n3} {n3}",), "s"),
    ("dllhost.exe", "COM Surrogate", "dllhost.exe",
     ("C:\\Windows\\system32\\DllHost.exe /Processid:{{{g}}}",), "a"),
    ("wbem\\WmiPrvSE.exe", "WMI Provider Host", "Wmiprvse.exe",
     ("C:\\Windows\\system32\\wbem\\wmiprvse.exe -Embedding",
      "C:\\Windows\\system32\\wbem\\wmiprvse.exe -secured -Embedding"), "s"),
    ("sppsvc.exe", "Microsoft Software Protection Platform Service", None,
     ("C:\\Windows\\system32\\sppsvc.exe",), "s"),
    ("smartscreen.exe", "Windows Defender SmartScreen", None,
     ("C:\\Windows\\System32\\smartscreen.exe -Embedding",), "u"),
    ("ctfmon.exe", "CTF Loader", None, ("\"ctfmon.exe\"",), "u"),
    ("sihost.exe", "Shell Infrastructure Host", None, ("sihost.exe",), "u"),
    ("userinit.exe", "Userinit Logon Application", None, ("C:\\Windows\\system32\\userinit.exe",), "u"),
    ("dwm.exe", "Desktop Window Manager", None, ("\"dwm.exe\"",), "s"),
    ("WerFault.exe", "Windows Problem Reporting", "WerFault.exe",
     ("C:\\Windows\\system32\\WerFault.exe -u -p {n} -s {n3}",
      "C:\\Windows\\system32\\WerFault.exe -pss -s {n3} -p {n} -ip {n}"), "a"),
    ("wermgr.exe", "Windows Problem Reporting", None,
     ("C:\\Windows\\system32\\wermgr.exe -upload", "C:\\Windows\\system32\\wermgr.exe -outputfile"), "s"),
    ("consent.exe", "Consent UI for administrative applications", None,
     ("consent.exe {n} {n3} 000001{h}",), "s"),
    ("msiexec.exe", "Windows\u00ae installer", "msiexec.exe",
     ("C:\\Windows\\system32\\msiexec.exe /V",
      "C:\\Windows\\System32\\MsiExec.exe -Embedding {h}{h}{h}{h} C",
      "\"C:\\Windows\\System32\\msiexec.exe\" /i \"{temp}\\{d}.msi\" /qn"), "a"),
    ("rundll32.exe", "Windows host process (Rundll32)", "RUNDLL32.EXE",
     ("C:\\Windows\\system32\\rundll32.exe C:\\Windows\\system32\\inetcpl.cpl,ClearMyTracksByProcess Flags:{n} WinX:0 WinY:0",
      "rundll32.exe C:\\Windows\\System32\\shell32.dll,SHCreateLocalServerRunDll {{{g}}} -Embedding",
      "\"C:\\Windows\\system32\\rundll32.exe\" C:\\Windows\\system32\\PcaSvc.dll,PcaPatchSdbTask"), "a"),
    ("regsvr32.exe", "Microsoft(C) Register Server", "REGSVR32.EXE",
     ("regsvr32.exe /s \"C:\\Program Files\\{vendor}\\{d}.dll\"",), "a"),
    ("reg.exe", "Registry Console Tool", "reg.exe",
     ("reg query \"HKLM\\SOFTWARE\\{vendor}\\{d}\" /v Version",
      "reg.exe add HKCU\\Software\\{vendor} /v Setting{n} /t REG_DWORD /d {n3} /f"), "a"),
    ("net.exe", "Net Command", "net.exe",
     ("net use Z: \\\\fs{n3}\\share", "net time \\\\dc01 /set /y", "net start {svc}"), "a"),
    ("net1.exe", "Net Command", "net1.exe", ("C:\\Windows\\system32\\net1 start {svc}",), "a"),
    ("sc.exe", "Service Control Manager Configuration Tool", "sc.exe",
     ("sc query {svc}", "C:\\Windows\\system32\\sc.exe start {svc}"), "a"),
    ("schtasks.exe", "Task Scheduler Configuration Tool", "schtasks.exe",
     ("schtasks /query /fo LIST /tn \\{vendor}\\{d}",
      "\"C:\\Windows\\system32\\schtasks.exe\" /run /tn \"\\Microsoft\\Windows\\{svc}\""), "a"),
    ("tasklist.exe", "Lists the current running tasks", "tasklist.exe", ("tasklist /fi \"imagename eq {d}.exe\"",), "a"),
    ("ipconfig.exe", "IP Configuration Utility", "ipconfig.exe", ("ipconfig /all", "ipconfig /flushdns"), "a"),
    ("PING.EXE", "TCP/IP Ping Command", "ping.exe", ("ping -n 1 {ip}", "ping {host}.corp.example"), "a"),
    ("nslookup.exe", "nslookup", "nslookup.exe", ("nslookup {host}.corp.example",), "a"),
    ("gpupdate.exe", "Microsoft\u00ae Group Policy Update Utility", "GPUpdate.exe", ("gpupdate /force", "gpupdate /target:computer"), "a"),
    ("notepad.exe", "Notepad", "NOTEPAD.EXE",
     ("\"C:\\Windows\\system32\\notepad.exe\" C:\\Users\\{u}\\Desktop\\{d}.txt", "notepad.exe"), "u"),
    ("mmc.exe", "Microsoft Management Console", "MMC.EXE",
     ("\"C:\\Windows\\system32\\mmc.exe\" \"C:\\Windows\\system32\\{svc}.msc\" ",), "u"),
    ("explorer.exe", "Windows Explorer", "EXPLORER.EXE",
     ("C:\\Windows\\Explorer.EXE", "C:\\Windows\\explorer.exe /factory,{{{g}}} -Embedding"), "u"),
    ("LogonUI.exe", "Windows Logon User Interface Host", None, ("\"LogonUI.exe\" /flags:0x2 /state0:0xa3b{h5} /state1:0x41c64e6d",), "s"),
    ("fontdrvhost.exe", "Usermode Font Driver Host", None, ("\"fontdrvhost.exe\"",), "s"),
    ("winlogon.exe", "Windows Logon Application", None, ("winlogon.exe",), "s"),
    ("wuauclt.exe", "Windows Update", None, ("\"C:\\Windows\\system32\\wuauclt.exe\" /RunHandlerComServer",), "s"),
    ("MusNotification.exe", "MusNotification.exe", None, ("C:\\Windows\\system32\\MusNotification.exe",), "s"),
    ("usocoreworker.exe", "USO Core Worker Process", None, ("C:\\Windows\\System32\\usocoreworker.exe -Embedding",), "s"),
    ("TiWorker.exe", "Windows Modules Installer Worker", None, ("C:\\Windows\\winsxs\\amd64_microsoft-windows-servicingstack_31bf3856ad364e35_10.0.19041.3205_none_7e1b{h5}\\TiWorker.exe -Embedding",), "s"),
    ("CompatTelRunner.exe", "Microsoft Compatibility Telemetry", None,
     ("C:\\Windows\\system32\\compattelrunner.exe -m:appraiser.dll -f:DoScheduledTelemetryRun",
      "C:\\Windows\\system32\\CompatTelRunner.exe -maintenance"), "s"),
    ("DeviceCensus.exe", "Device Census", None, ("C:\\Windows\\system32\\devicecensus.exe SystemCxt",), "s"),
    ("whoami.exe", "whoami - displays logged on user information", "whoami.exe", ("whoami", "whoami /upn"), "u"),
    ("hostname.exe", "Hostname APP", "hostname.exe", ("hostname",), "a"),
    ("find.exe", "Find String (grep) Utility", "find.exe", ("find /i \"{d}\"",), "a"),
    ("findstr.exe", "Find String (QGREP) Utility", "FINDSTR.EXE", ("findstr /i /c:\"{d}\" {temp}\\{d}.log",), "a"),
    ("timeout.exe", "timeout - pauses command processing", "timeout.exe", ("timeout /t {n3} /nobreak",), "a"),
    ("xcopy.exe", "Extended Copy Utility", "XCOPY.EXE", ("xcopy /y /e \\\\fs{n3}\\deploy\\{d} C:\\deploy\\{d}\\",), "a"),
    ("robocopy.exe", "Microsoft Robocopy", "robocopy.exe", ("robocopy \\\\fs{n3}\\home\\{u} D:\\backup\\{u} /MIR /R:1 /W:1",), "a"),
    ("certutil.exe", "CertUtil.exe", "CertUtil.exe", ("certutil -verify C:\\certs\\{d}.cer", "certutil.exe -pulse"), "a"),
    ("dism.exe", "Dism Image Servicing Utility", "DISM.EXE", ("dism.exe /online /get-packages",), "s"),
    ("cleanmgr.exe", "Disk Space Cleanup Manager for Windows", "CLEANMGR.EXE", ("\"C:\\Windows\\system32\\cleanmgr.exe\" /autoclean /d C:",), "s"),
    ("defrag.exe", "Disk Defragmenter Module", "Defrag.EXE", ("C:\\Windows\\system32\\defrag.exe -p {h5} -s {n3} -b -OnlyPreferred C:",), "s"),
    ("lsass.exe", "Local Security Authority Process", None, ("C:\\Windows\\system32\\lsass.exe",), "s"),
    ("services.exe", "Services and Controller app", None, ("C:\\Windows\\system32\\services.exe",), "s"),
    ("wininit.exe", "Windows Start-Up Application", None, ("wininit.exe",), "s"),
    ("smss.exe", "Windows Session Manager", None, ("\\SystemRoot\\System32\\smss.exe",), "s"),
    ("csrss.exe", "Client Server Runtime Process", None, ("%SystemRoot%\\system32\\csrss.exe ObjectDirectory=\\Windows SharedSection=1024,20480,768 Windows=On",), "s"),
    ("spoolsv.exe", "Spooler SubSystem App", None, ("C:\\Windows\\System32\\spoolsv.exe",), "s"),
    ("audiodg.exe", "Windows Audio Device Graph Isolation", None, ("C:\\Windows\\system32\\AUDIODG.EXE 0x{h}",), "s"),
    ("SecurityHealthService.exe", "Windows Security Health Service", None, ("C:\\Windows\\system32\\SecurityHealthService.exe",), "s"),
    ("SgrmBroker.exe", "System Guard Runtime Monitor Broker", None, ("C:\\Windows\\system32\\SgrmBroker.exe",), "s"),
    ("ApplicationFrameHost.exe", "Application Frame Host", None, ("C:\\Windows\\system32\\ApplicationFrameHost.exe -Embedding",), "u"),
    ("SystemSettingsBroker.exe", "System Settings Broker", None, ("C:\\Windows\\System32\\SystemSettingsBroker.exe -Embedding",), "u"),
    ("UserOOBEBroker.exe", "User OOBE Broker", None, ("C:\\Windows\\System32\\oobe\\UserOOBEBroker.exe -Embedding",), "u"),
    ("slui.exe", "Windows Activation Client", None, ("C:\\Windows\\System32\\slui.exe -Embedding",), "u"),
    ("mobsync.exe", "Microsoft Sync Center", None, ("C:\\Windows\\System32\\mobsync.exe -Embedding",), "u"),
    ("WUDFHost.exe", "Windows Driver Foundation - User-mode Driver Framework Host Process", None,
     ("\"C:\\Windows\\System32\\WUDFHost.exe\" -HostGUID:{{{g}}} -IoEventPortName:\\UMDFCommunicationPorts\\WUDF\\HostProcess-{g}",), "s"),
    ("dasHost.exe", "Device Association Framework Provider Host", None, ("dashost.exe {{{g}}}",), "s"),
    ("wlrmdr.exe", "Windows Logon Reminder", None, ("-s -1 -f 2 -t You must restart -m Restart -a 3",), "u"),
    ("VSSVC.exe", "Microsoft\u00ae Volume Shadow Copy Service", None, ("C:\\Windows\\system32\\vssvc.exe",), "s"),
    ("msdtc.exe", "Microsoft Distributed Transaction Coordinator Service", None, ("C:\\Windows\\System32\\msdtc.exe",), "s"),
    ("lodctr.exe", "Load PerfMon Counters", None, ("C:\\Windows\\system32\\lodctr.exe /R",), "s"),
    ("wevtutil.exe", "Eventing Command Line Utility", "wevtutil.exe", ("wevtutil qe System /c:{n3} /rd:true /f:text",), "a"),
    ("where.exe", "Lists location of files", "where.exe", ("where {d}",), "a"),
    ("chcp.com", "Change CodePage Utility", "CHCP.COM", ("chcp 65001", "chcp.com 437"), "a"),
    ("attrib.exe", "Attribute Utility", "ATTRIB.EXE", ("attrib -r {temp}\\{d}.tmp",), "a"),
    ("icacls.exe", "icacls", "iCACLS.EXE", ("icacls C:\\deploy\\{d} /grant Users:(RX)",), "a"),
    ("tzsync.exe", "Time Zone Sync", None, ("C:\\Windows\\system32\\tzsync.exe",), "s"),
    ("wsqmcons.exe", "Windows SQM Consolidator", None, ("C:\\Windows\\system32\\wsqmcons.exe",), "s"),
    ("dxgiadaptercache.exe", "DXGI Adapter Cache", None, ("C:\\Windows\\system32\\dxgiadaptercache.exe",), "s"),
    ("SppExtComObj.Exe", "KMS Connection Broker", None, ("C:\\Windows\\system32\\SppExtComObj.exe -Embedding",), "s"),
    ("MoUsoCoreWorker.exe", "MoUSO Core Worker Process", None, ("C:\\Windows\\uus\\AMD64\\MoUsoCoreWorker.exe",), "s"),
    ("SIHClient.exe", "SIH Client", None, ("C:\\Windows\\System32\\sihclient.exe  /cv {h}{h5}.0.{n}",), "s"),
    ("ngen.exe", "Microsoft Common Language Runtime native compiler", None, ("\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\ngen.exe\" install \"{d}, Version=4.0.0.0\" /NoDependencies /queue:1",), "s"),
    ("gpscript.exe", "Group Policy Script Application", None, ("gpscript.exe /RefreshSystemParam",), "u"),
]

# Applications outside System32: (path, description, product, company, templates, kind).
APPLICATIONS: list[tuple[str, str, str, str, tuple[str, ...], str]] = [
    ("C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe", "Google Chrome", "Google Chrome", "Google LLC",
     ("\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=renderer --lang=en-US --renderer-client-id={n3} /prefetch:1",
      "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=utility --utility-sub-type=storage.mojom.StorageService --mojo-platform-channel-handle={n} /prefetch:8",
      "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" ",
      "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --no-startup-window /prefetch:5",
      "chrome.exe https://{host}.example.com/{d}",
      "\"C:\\Program Files\\Google\\Chrome\\Application\\chrome.exe\" --type=gpu-process --gpu-preferences={h}{h}== --mojo-platform-channel-handle={n} /prefetch:2"), "u"),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe", "Microsoft Edge", "Microsoft Edge", MS,
     ("\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --type=renderer --instant-process --lang=en-US /prefetch:1",
      "\"C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\msedge.exe\" --single-argument https://{host}.example.com/{d}"), "u"),
    ("C:\\Program Files\\Mozilla Firefox\\firefox.exe", "Firefox", "Firefox", "Mozilla Corporation",
     ("\"C:\\Program Files\\Mozilla Firefox\\firefox.exe\" -contentproc --channel=\"{n}.{n3}.{n}\" -childID {n3} -isForBrowser tab",), "u"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE", "Microsoft Word", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE\" /n \"C:\\Users\\{u}\\Documents\\{d}.docx\" /o \"\"",), "u"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE", "Microsoft Excel", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\EXCEL.EXE\" \"C:\\Users\\{u}\\Documents\\{d}.xlsx\"",), "u"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE", "Microsoft Outlook", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\OUTLOOK.EXE\" ",), "u"),
    ("C:\\Program Files\\Microsoft Office\\root\\Office16\\POWERPNT.EXE", "Microsoft PowerPoint", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Microsoft Office\\root\\Office16\\POWERPNT.EXE\" \"C:\\Users\\{u}\\Desktop\\{d}.pptx\"",), "u"),
    ("C:\\Program Files\\Microsoft Office\\root\\Integration\\Integrator.exe", "Microsoft Office Integrator", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Microsoft Office\\root\\Integration\\Integrator.exe\" /R /Extension",), "s"),
    ("C:\\Program Files\\Common Files\\microsoft shared\\ClickToRun\\OfficeClickToRun.exe", "Microsoft Office Click-to-Run", "Microsoft Office", MS,
     ("\"C:\\Program Files\\Common Files\\microsoft shared\\ClickToRun\\OfficeClickToRun.exe\" /service",), "s"),
    ("C:\\Program Files\\Microsoft VS Code\\Code.exe", "Visual Studio Code", "Visual Studio Code", MS,
     ("\"C:\\Program Files\\Microsoft VS Code\\Code.exe\" --type=utility --utility-sub-type=node.mojom.NodeService --lang=en-US",
      "\"C:\\Program Files\\Microsoft VS Code\\Code.exe\" C:\\src\\{d}"), "u"),
    ("C:\\Program Files\\Git\\cmd\\git.exe", "Git for Windows", "Git", "The Git Development Community",
     ("git.exe status --porcelain", "git.exe fetch origin --prune", "git log -n {n3} --oneline", "git.exe rev-parse HEAD"), "u"),
    ("C:\\Program Files\\Git\\mingw64\\bin\\git.exe", "Git for Windows", "Git", "The Git Development Community",
     ("\"C:\\Program Files\\Git\\mingw64\\bin\\git.exe\" show --textconv :{d}.py", "git.exe config --get remote.origin.url"), "u"),
    ("C:\\Program Files\\nodejs\\node.exe", "Node.js JavaScript Runtime", "Node.js", "Node.js",
     ("\"C:\\Program Files\\nodejs\\node.exe\" C:\\src\\{d}\\node_modules\\.bin\\..\\{d}\\bin\\{d}.js",), "u"),
    ("C:\\Program Files\\Python311\\python.exe", "Python", "Python", "Python Software Foundation",
     ("python.exe -m pip list", "\"C:\\Program Files\\Python311\\python.exe\" C:\\src\\{d}\\main.py --port {p}"), "u"),
    ("C:\\Program Files\\7-Zip\\7z.exe", "7-Zip Console", "7-Zip", "Igor Pavlov",
     ("\"C:\\Program Files\\7-Zip\\7z.exe\" x \"C:\\Users\\{u}\\Downloads\\{d}.zip\" -o\"C:\\Users\\{u}\\Downloads\\{d}\"",), "u"),
    ("C:\\Program Files\\Notepad++\\notepad++.exe", "Notepad++", "Notepad++", "Don HO don.h@free.fr",
     ("\"C:\\Program Files\\Notepad++\\notepad++.exe\" \"C:\\Users\\{u}\\Desktop\\{d}.txt\"",), "u"),
    ("C:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\Acrobat.exe", "Adobe Acrobat", "Adobe Acrobat", "Adobe Systems Incorporated",
     ("\"C:\\Program Files\\Adobe\\Acrobat DC\\Acrobat\\Acrobat.exe\" \"C:\\Users\\{u}\\Downloads\\{d}.pdf\"",), "u"),
    ("C:\\Program Files\\Zoom\\bin\\Zoom.exe", "Zoom Meetings", "Zoom Meetings", "Zoom Video Communications, Inc.",
     ("\"C:\\Program Files\\Zoom\\bin\\Zoom.exe\" \"--url=zoommtg://zoom.us/join?confno={n}\"",), "u"),
    ("C:\\Program Files\\Slack\\slack.exe", "Slack", "Slack", "Slack Technologies Inc.",
     ("\"C:\\Program Files\\Slack\\slack.exe\" --type=renderer --lang=en-US",), "u"),
    ("C:\\Program Files\\Java\\jre1.8.0_391\\bin\\java.exe", "Java(TM) Platform SE binary", "Java(TM) Platform SE 8", "Oracle Corporation",
     ("\"C:\\Program Files\\Java\\jre1.8.0_391\\bin\\java.exe\" -jar C:\\apps\\{d}.jar --port {p}",), "a"),
    ("C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe", "VMware Tools Core Service", "VMware Tools", "VMware, Inc.",
     ("\"C:\\Program Files\\VMware\\VMware Tools\\vmtoolsd.exe\" -n vmusr",), "u"),
    ("C:\\Program Files\\Windows Defender\\MpCmdRun.exe", "Microsoft Malware Protection Command Line Utility", WINPROD, MS,
     ("\"C:\\Program Files\\Windows Defender\\MpCmdRun.exe\" -wdenable", "\"C:\\Program Files\\Windows Defender\\MpCmdRun.exe\" SignaturesUpdateService -ScheduleJob -UnmanagedUpdate"), "s"),
    ("C:\\Program Files\\Microsoft SQL Server\\MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe", "SQL Server Windows NT - 64 Bit", "Microsoft SQL Server", MS,
     ("\"C:\\Program Files\\Microsoft SQL Server\\MSSQL15.MSSQLSERVER\\MSSQL\\Binn\\sqlservr.exe\" -sMSSQLSERVER",), "s"),
    ("C:\\Program Files\\WindowsApps\\Microsoft.WindowsTerminal_1.18.3181.0_x64__8wekyb3d8bbwe\\WindowsTerminal.exe", "Windows Terminal", "Windows Terminal", MS,
     ("\"C:\\Program Files\\WindowsApps\\Microsoft.WindowsTerminal_1.18.3181.0_x64__8wekyb3d8bbwe\\WindowsTerminal.exe\" ",), "u"),
    ("C:\\Program Files\\WindowsApps\\Microsoft.YourPhone_1.23082.123.0_x64__8wekyb3d8bbwe\\PhoneExperienceHost.exe", "Phone Link", "Phone Link", MS,
     ("\"C:\\Program Files\\WindowsApps\\Microsoft.YourPhone_1.23082.123.0_x64__8wekyb3d8bbwe\\PhoneExperienceHost.exe\" -ServerName:App.AppX{h}.mca",), "u"),
    ("C:\\Windows\\SystemApps\\MicrosoftWindows.Client.CBS_cw5n1h2txyewy\\SearchHost.exe", "Search application", WINPROD, MS,
     ("\"C:\\Windows\\SystemApps\\MicrosoftWindows.Client.CBS_cw5n1h2txyewy\\SearchHost.exe\" -ServerName:CortanaUI.AppX{h}.mca",), "u"),
    ("C:\\Windows\\SystemApps\\Microsoft.Windows.StartMenuExperienceHost_cw5n1h2txyewy\\StartMenuExperienceHost.exe", "Windows Start Experience Host", WINPROD, MS,
     ("\"C:\\Windows\\SystemApps\\Microsoft.Windows.StartMenuExperienceHost_cw5n1h2txyewy\\StartMenuExperienceHost.exe\" -ServerName:App.AppXywbrabmsek0gm3tkwpr5kwzbs55tkqay.mca",), "u"),
    ("C:\\Windows\\ImmersiveControlPanel\\SystemSettings.exe", "Settings", WINPROD, MS,
     ("\"C:\\Windows\\ImmersiveControlPanel\\SystemSettings.exe\" -ServerName:microsoft.windows.immersivecontrolpanel",), "u"),
    ("C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe", "Visual C# Command Line Compiler", "Microsoft\u00ae .NET Framework", MS,
     ("\"C:\\Windows\\Microsoft.NET\\Framework64\\v4.0.30319\\csc.exe\" /noconfig /fullpaths @\"C:\\Users\\{u}\\AppData\\Local\\Temp\\{h}.cmdline\"",), "u"),
    ("C:\\Windows\\servicing\\TrustedInstaller.exe", "Windows Modules Installer", WINPROD, MS,
     ("C:\\Windows\\servicing\\TrustedInstaller.exe",), "s"),
]

#: Versioned and per-user install folders: (pattern, names); `{v}` becomes a version, `{u}`
#: a user name. They make the long tail of distinct image paths.
VERSIONED = [
    ("C:\\ProgramData\\Microsoft\\Windows Defender\\Platform\\4.18.{v}-0\\", ("MsMpEng.exe", "MpCmdRun.exe", "NisSrv.exe", "MpCopyAccelerator.exe")),
    ("C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\1.3.{v}\\", ("MicrosoftEdgeUpdate.exe", "MicrosoftEdgeUpdateComRegisterShell64.exe")),
    ("C:\\Program Files (x86)\\Google\\Update\\1.3.{v}\\", ("GoogleUpdate.exe", "GoogleCrashHandler.exe", "GoogleCrashHandler64.exe")),
    ("C:\\Program Files (x86)\\Microsoft\\Edge\\Application\\1{v}\\", ("identity_helper.exe", "cookie_exporter.exe", "elevation_service.exe")),
    ("C:\\Program Files\\Google\\Chrome\\Application\\1{v}\\", ("elevation_service.exe", "notification_helper.exe")),
    ("C:\\Users\\{u}\\AppData\\Local\\Microsoft\\OneDrive\\2{v}\\", ("FileSyncHelper.exe", "FileCoAuth.exe", "OneDriveStandaloneUpdater.exe")),
    ("C:\\Users\\{u}\\AppData\\Local\\Microsoft\\Teams\\current\\", ("Teams.exe",)),
    ("C:\\Users\\{u}\\AppData\\Local\\Programs\\Microsoft VS Code\\", ("Code.exe",)),
    ("C:\\Users\\{u}\\AppData\\Local\\Microsoft\\OneDrive\\", ("OneDrive.exe",)),
    ("C:\\Users\\{u}\\AppData\\Roaming\\Zoom\\bin\\", ("Zoom.exe", "CptHost.exe")),
    ("C:\\Users\\{u}\\AppData\\Local\\Temp\\{{{g}}}\\", ("setup.exe", "install.exe", "dotnet-runtime-6.0.{v}-win-x64.exe")),
    ("C:\\Users\\{u}\\AppData\\Local\\Temp\\is-{h5}.tmp\\", ("{d}-setup.tmp",)),
    ("C:\\ProgramData\\Package Cache\\{{{g}}}\\", ("VC_redist.x64.exe", "windowsdesktop-runtime-6.0.{v}-win-x64.exe")),
    ("C:\\Windows\\SoftwareDistribution\\Download\\Install\\", ("AM_Delta_Patch_1.4{v}.exe", "windows10.0-kb50{v}-x64.exe")),
    ("C:\\Windows\\Temp\\{{{g}}}\\", ("DismHost.exe",)),
    ("C:\\Program Files\\{vendor}\\{d}\\", ("{d}.exe", "{d}Service.exe", "{d}Updater.exe", "unins000.exe")),
]

VENDORS = ("Acme", "Contoso", "Fabrikam", "Northwind", "Tailspin", "Litware", "AdventureWorks",
           "WideWorldImporters", "Proseware", "Woodgrove", "Lucerne", "Humongous", "Coho",
           "Wingtip", "Trey", "Margie", "Alpine", "Blue Yonder", "Fourth Coffee", "Graphic Design")
WORDS = ("report", "budget", "invoice", "notes", "backup", "deploy", "inventory", "sync",
         "agent", "client", "update", "monitor", "helper", "launcher", "viewer", "editor",
         "scanner", "player", "manager", "connector", "bridge", "tools", "sales", "q3",
         "draft", "final", "summary", "plan", "data", "export", "import", "build", "test")
SERVICES = ("Schedule", "BITS", "Winmgmt", "gpsvc", "wuauserv", "Dnscache", "EventLog",
            "LanmanServer", "LanmanWorkstation", "CryptSvc", "Themes", "ProfSvc", "UsoSvc",
            "TrkWks", "Appinfo", "iphlpsvc", "DsSvc", "WpnService", "lfsvc", "SENS")
FIRST = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
         "mallory", "nick", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter",
         "yolanda", "zoe", "li", "maria", "jose", "fatima", "chen", "anna", "omar", "sven", "priya")
SERVICE_USERS = ("NT AUTHORITY\\SYSTEM", "NT AUTHORITY\\LOCAL SERVICE", "NT AUTHORITY\\NETWORK SERVICE")
# Who starts what: (parent image, weight) for processes of users and of service accounts.
PARENTS_USER = (("C:\\Windows\\explorer.exe", 60), (SYS32 + "svchost.exe", 22), (SYS32 + "cmd.exe", 8),
                (SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe", 4),
                ("C:\\Program Files\\Microsoft VS Code\\Code.exe", 3),
                ("C:\\Windows\\System32\\taskhostw.exe", 3))
PARENTS_SYSTEM = ((SYS32 + "svchost.exe", 50), (SYS32 + "services.exe", 30),
                  (SYS32 + "wbem\\WmiPrvSE.exe", 5), (SYS32 + "taskhostw.exe", 5),
                  ("C:\\Windows\\servicing\\TrustedInstaller.exe", 5), (SYS32 + "msiexec.exe", 5))
PARENTS_CONSOLE = ((SYS32 + "cmd.exe", 50), (SYS32 + "WindowsPowerShell\\v1.0\\powershell.exe", 25),
                   ("C:\\Program Files\\Git\\cmd\\git.exe", 10), ("C:\\Program Files\\nodejs\\node.exe", 5),
                   (SYS32 + "svchost.exe", 10))
#: Fixed parents (Sysmon on a healthy machine); and programs whose children are themselves.
FIXED_PARENT = {"svchost.exe": SYS32 + "services.exe", "services.exe": SYS32 + "wininit.exe",
                "explorer.exe": SYS32 + "userinit.exe", "userinit.exe": SYS32 + "winlogon.exe",
                "wininit.exe": SYS32 + "smss.exe", "winlogon.exe": SYS32 + "smss.exe",
                "csrss.exe": SYS32 + "smss.exe", "lsass.exe": SYS32 + "wininit.exe",
                "smss.exe": SYS32 + "smss.exe", "spoolsv.exe": SYS32 + "services.exe",
                "TiWorker.exe": SYS32 + "svchost.exe", "dwm.exe": SYS32 + "winlogon.exe",
                "LogonUI.exe": SYS32 + "winlogon.exe", "fontdrvhost.exe": SYS32 + "wininit.exe",
                "TrustedInstaller.exe": SYS32 + "services.exe", "sppsvc.exe": SYS32 + "services.exe",
                "WmiPrvSE.exe": SYS32 + "svchost.exe", "RuntimeBroker.exe": SYS32 + "svchost.exe",
                "dllhost.exe": SYS32 + "svchost.exe", "backgroundTaskHost.exe": SYS32 + "svchost.exe",
                "taskhostw.exe": SYS32 + "svchost.exe", "sihost.exe": SYS32 + "svchost.exe",
                "ctfmon.exe": SYS32 + "svchost.exe", "SearchProtocolHost.exe": SYS32 + "SearchIndexer.exe",
                "SearchFilterHost.exe": SYS32 + "SearchIndexer.exe", "smartscreen.exe": SYS32 + "svchost.exe",
                "WerFault.exe": SYS32 + "svchost.exe", "consent.exe": SYS32 + "svchost.exe",
                "audiodg.exe": SYS32 + "svchost.exe", "WUDFHost.exe": SYS32 + "services.exe"}
SELF_PARENT = ("chrome.exe", "msedge.exe", "firefox.exe", "Code.exe", "slack.exe", "Teams.exe")


@dataclasses.dataclass(frozen=True)
class Profile:
    """One image path and everything that goes with it."""

    image: str
    original: str
    description: str
    product: str
    company: str
    version: str
    hashes: str
    templates: tuple[str, ...]
    kind: str  # s(ervice account), u(ser), a(ny)
    user: str | None = None  # per-user install folders belong to one user


def _hashes(path: str) -> str:
    digest = hashlib.sha256(path.lower().encode()).hexdigest().upper()
    md5 = hashlib.md5(path.encode(), usedforsecurity=False).hexdigest().upper()
    imphash = hashlib.sha1(path.encode(), usedforsecurity=False).hexdigest().upper()[:32]
    return f"MD5={md5},SHA256={digest},IMPHASH={imphash}"


def _users(rng: random.Random) -> list[str]:
    domains = ("CORP", "CORP", "CORP", "EMEA", "LAB")
    users = []
    for first in FIRST:
        for last in ("smith", "jones", "garcia", "kim"):
            users.append(f"{rng.choice(domains)}\\{first}.{last}")
    users += ["CORP\\svc_backup", "CORP\\svc_sql", "CORP\\adm_it", "WORKSTATION\\Administrator"]
    return users


def build_profiles(rng: random.Random, users: list[str], target: int = 3000) -> list[Profile]:
    """The image catalogue, most common first: System32 and popular applications, then a
    long tail of versioned and per-user install paths (`target` in all)."""
    out: list[Profile] = []
    common_head = []
    for name, desc, original, templates, kind in SYSTEM_BINARIES:
        image = SYS32 + name
        build = rng.choice((1, 1, 546, 1023, 3636, 4355))
        common_head.append(Profile(
            image, original or name.rsplit("\\", 1)[-1], desc, WINPROD, MS,
            WINVER.format(b=build), _hashes(image), templates, kind))
    for path, desc, product, company, templates, kind in APPLICATIONS:
        name = path.rsplit("\\", 1)[1]
        common_head.append(Profile(path, name, desc, product, company,
                                   f"{rng.randrange(1, 120)}.0.{rng.randrange(9999)}.{rng.randrange(200)}",
                                   _hashes(path), templates, kind))
    # A fixed popularity order: the usual suspects on top, the rest shuffled.
    top = ("svchost.exe", "conhost.exe", "RuntimeBroker.exe", "chrome.exe", "backgroundTaskHost.exe",
           "taskhostw.exe", "msedge.exe", "cmd.exe", "powershell.exe", "dllhost.exe", "sihost.exe",
           "ctfmon.exe", "WmiPrvSE.exe", "git.exe", "Code.exe")
    head = [p for t in top for p in common_head if p.image.rsplit("\\", 1)[1] == t]
    rest = [p for p in common_head if p not in head]
    rng.shuffle(rest)
    out = head + rest
    # SysWOW64 twins of part of System32.
    for p in list(common_head[: len(SYSTEM_BINARIES)]):
        if rng.random() < 0.4:
            image = p.image.replace(SYS32, WOW64)
            out.append(dataclasses.replace(p, image=image, hashes=_hashes(image)))
    while len(out) < target:
        pattern, names = VERSIONED[min(int(rng.paretovariate(1.2)) - 1, len(VERSIONED) - 1)]
        user = rng.choice(users)
        fill = _fill_values(rng, user)
        folder = pattern.format(**fill)
        name = rng.choice(names).format(**fill)
        image = folder + name
        stem = name.rsplit(".", 1)[0]
        quoted = image.replace("{", "{{").replace("}", "}}")
        templates = (f"\"{quoted}\"", f"\"{quoted}\" /silent", f"\"{quoted}\" --update --channel={{d}}",
                     f"{name} -Embedding", f"\"{quoted}\" /S /{stem[:3].upper()}={{n}}", f"{name}",
                     f"{name} /update {{n}}")
        company = rng.choice(VENDORS) + " Inc." if "\\Program Files\\" in folder else MS
        out.append(Profile(image, name, stem, stem, company,
                           f"{rng.randrange(1, 30)}.{rng.randrange(20)}.{rng.randrange(9999)}.0",
                           _hashes(image), templates, "u" if "\\Users\\" in folder else "a",
                           user if "\\Users\\" in folder else None))
    seen: set[str] = set()
    unique = []
    for p in out:
        if p.image.lower() not in seen:
            seen.add(p.image.lower())
            unique.append(p)
    return unique


def _guid(rng: random.Random) -> str:
    h = f"{rng.getrandbits(128):032X}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_FILLERS: dict[str, Callable[[random.Random, str], str]] = {
    "n": lambda r, u: str(r.randrange(1, 100000)),
    "n3": lambda r, u: str(r.randrange(100, 5000)),
    "h": lambda r, u: f"{r.getrandbits(32):08x}",
    "h5": lambda r, u: f"{r.getrandbits(20):05x}",
    "g": lambda r, u: _guid(r),
    "u": lambda r, u: u.rsplit("\\", 1)[-1],
    "d": lambda r, u: r.choice(WORDS) + str(r.randrange(100)),
    "v": lambda r, u: f"{r.randrange(10, 30)}.{r.randrange(100, 999)}.{r.randrange(10)}",
    "ip": lambda r, u: f"10.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(1, 255)}",
    "p": lambda r, u: str(r.randrange(1024, 65535)),
    "svc": lambda r, u: r.choice(SERVICES),
    "vendor": lambda r, u: r.choice(VENDORS),
    "host": lambda r, u: f"srv{r.randrange(400):03d}",
    "temp": lambda r, u: "C:\\Windows\\Temp" if u.startswith("NT AUTHORITY") else
    "C:\\Users\\" + u.rsplit("\\", 1)[-1] + "\\AppData\\Local\\Temp",
    "script": lambda r, u: f"C:\\ProgramData\\{r.choice(VENDORS)}\\{r.choice(WORDS)}.cmd",
}


def _fill_values(rng: random.Random, user: str, keys: Iterable[str] = tuple(_FILLERS)) -> dict[str, str]:
    return {k: _FILLERS[k](rng, user) for k in keys}


class _Filler:
    """Fills command-line templates; draws only the values a template uses."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.keys: dict[str, tuple[str, ...]] = {}

    def fill(self, template: str, user: str) -> str:
        keys = self.keys.get(template)
        if keys is None:
            keys = tuple(dict.fromkeys(f for _, f, _, _ in string.Formatter().parse(template) if f))
            self.keys[template] = keys
        if not keys:
            return template.replace("{{", "{").replace("}}", "}")
        return template.format(**{k: _FILLERS[k](self.rng, user) for k in keys})


def _zipf_indices(nprng: np.random.Generator, n: int, size: int, s: float = 1.1, q: float = 2.0) -> np.ndarray:
    weights = 1.0 / np.power(np.arange(size) + q, s)
    return nprng.choice(size, n, p=weights / weights.sum())


# --- real positives ----------------------------------------------------------------------


@dataclasses.dataclass
class Positives:
    """Where positives come from: real events of ``regression_data/`` (each with the rule
    ids its test names) and rules to synthesize events for (checked by the reference)."""

    regression: list[tuple[dict[str, Any], list[str]]] = dataclasses.field(default_factory=list)
    rules: list[Any] = dataclasses.field(default_factory=list)  # sigma.rule.SigmaRule
    program: Any = None  # sigmarrow.Program of `rules`, same order


_INFO_RULE_ID = re.compile(r"^\s*-\s*id:\s*['\"]?([0-9a-fA-F-]{36})", re.MULTILINE)


def load_regression_events(sigma_dir: Path) -> list[tuple[dict[str, Any], list[str]]]:
    """Sysmon EventID 1 events of ``regression_data/`` as rows of :data:`COLUMNS`, each with
    the rule ids of the test it belongs to; [] without the ``evtx`` reader."""
    try:
        from sigmarrow.evtx import read_evtx
    except ImportError:
        return []
    out = []
    for path in sorted((sigma_dir / "regression_data").rglob("*.evtx")):
        info = path.parent / "info.yml"
        ids = _INFO_RULE_ID.findall(info.read_text(encoding="utf-8")) if info.is_file() else []
        try:
            table = read_evtx(path)
        except Exception:  # noqa: BLE001, S112 - a file the reader rejects is skipped
            continue
        for row in table.to_pylist():
            if row.get("EventID") == 1 and row.get("Image") and "Sysmon" in str(row.get("Provider_Name")):
                out.append(({c: row.get(c) for c in COLUMNS}, ids))
    return out


def load_positives(sigma_dir: Path | None, matcher: Any = None, rules: list[Any] | None = None) -> Positives:
    """Positives from a SigmaHQ checkout: regression events, and synthesis for `rules`
    (pySigma rules) compiled as `matcher` (same order)."""
    pos = Positives()
    if sigma_dir is not None:
        pos.regression = load_regression_events(sigma_dir)
    if matcher is not None and rules:
        pos.rules = rules
        pos.program = matcher.program
    return pos


def _solve(expr: dict[str, Any], atoms: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]] | None:
    """Atoms that, all true, make `expr` true (choosing one branch of each `or`), or None
    when the chosen path needs an atom we do not synthesize. `not` adds nothing: the
    reference checks the event afterwards."""
    if "and" in expr:
        out: list[dict[str, Any]] = []
        for child in expr["and"]:
            got = _solve(child, atoms, rng)
            if got is None:
                return None
            out += got
        return out
    if "or" in expr:
        children = list(expr["or"])
        rng.shuffle(children)
        for child in children[:4]:
            got = _solve(child, atoms, rng)
            if got is not None:
                return got
        return None
    if "not" in expr:
        return []
    if "atom" in expr:
        atom = atoms[expr["atom"]]
        if atom["op"] in ("str", "glob", "exists") and atom["field"] is not None:
            return [atom]
        return None
    if "const" in expr:
        return [] if expr["const"] else None
    return None


def _synth_value(atoms: list[dict[str, Any]], base: str | None, rng: random.Random) -> str | None:
    exact = [a["value"] for a in atoms if a["op"] == "str" and a["anchor"] == "exact"]
    if exact:
        return exact[0]
    prefix = "".join(a["value"] for a in atoms if a["op"] == "str" and a["anchor"] == "prefix")
    suffix = "".join(a["value"] for a in atoms if a["op"] == "str" and a["anchor"] == "suffix")
    middle = [a["value"] for a in atoms if a["op"] == "str" and a["anchor"] == "contains"]
    for a in atoms:
        if a["op"] == "glob":
            middle.append("".join(p["lit"] if isinstance(p, dict) else ("x" if p == "one" else " ")
                                  for p in a["parts"]))
    if any(a["op"] == "exists" for a in atoms) and not (prefix or suffix or middle):
        return base or "x"
    if suffix.startswith("\\") and not prefix:
        prefix = rng.choice(("C:\\Windows\\System32", "C:\\Users\\Public", "C:\\ProgramData\\x"))
    body = " ".join(middle)
    if base and not prefix and not exact and rng.random() < 0.5:
        body = base + " " + body
    return prefix + (" " if prefix and body and not prefix.endswith((" ", "\\")) else "") + body + \
        (" " if body and suffix and not suffix.startswith((" ", "\\", ".")) else "") + suffix


def _synthesize(event: dict[str, Any], rule_index: int, pos: Positives, rng: random.Random) -> dict[str, Any] | None:
    from sigmarrow import reference

    program = pos.program.data
    rule = program["rules"][rule_index]
    for _ in range(3):
        atoms = _solve(rule["condition"], program["atoms"], rng)
        if atoms is None:
            continue
        by_field: dict[str, list[dict[str, Any]]] = {}
        for a in atoms:
            by_field.setdefault(program["fields"][a["field"]], []).append(a)
        if any(name not in COLUMNS for name in by_field):
            continue  # e.g. GrandParentImage: not a Sysmon field, so not in our table
        candidate = dict(event)
        for name, field_atoms in by_field.items():
            if name == "EventID":
                continue
            candidate[name] = _synth_value(field_atoms, candidate.get(name), rng)
        try:
            if reference.evaluate_rule(pos.rules[rule_index], candidate, None):
                return candidate
        except ValueError:
            return None
    return None


# --- the generator -------------------------------------------------------------------------


def generate_events(
    rows: int,
    seed: int = 1,
    dictionary: bool = False,
    positives: Positives | None = None,
    regression_rate: float = 0.0005,
    synth_rate: float = 0.001,
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """`rows` synthetic Sysmon process-creation events, and the planted positives as
    (row, rule_id, source) with source ``regression`` (a real event of the rule's test; the
    rule is expected, not guaranteed, to match that very event) or ``synthesized`` (the
    reference evaluator confirmed the rule matches). Same seed, same table."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    users = _users(rng)
    profiles = build_profiles(rng, users)
    hosts = [f"WS{rng.randrange(100000):05d}.corp.example" for _ in range(400)] + \
        [f"SRV{i:03d}.corp.example" for i in range(60)]
    by_image = {p.image: i for i, p in enumerate(profiles)}

    def weighted(pairs: Sequence[tuple[str, int]]) -> list[int]:
        return [by_image[image] for image, weight in pairs if image in by_image for _ in range(weight)]

    parents_user, parents_system, parents_console = (
        weighted(PARENTS_USER), weighted(PARENTS_SYSTEM), weighted(PARENTS_CONSOLE))
    fixed: dict[int, int] = {}
    for i, p in enumerate(profiles):
        name = p.image.rsplit("\\", 1)[1]
        if p.image.startswith((SYS32, WOW64)) and name in FIXED_PARENT:
            parent_image = FIXED_PARENT[name]
            if parent_image not in by_image:  # e.g. SearchIndexer.exe: a parent only
                by_image[parent_image] = len(profiles)
                profiles.append(Profile(parent_image, parent_image.rsplit("\\", 1)[1], "", WINPROD, MS,
                                        WINVER.format(b=1), _hashes(parent_image), (parent_image,), "s"))
            fixed[i] = by_image[parent_image]
        elif name in SELF_PARENT:
            fixed[i] = i
        elif name in ("conhost.exe",):
            fixed[i] = -1  # a console program
    filler = _Filler(rng)

    # numpy draws, as lists: indexing a list is ~5x cheaper than a numpy array.
    image_idx = _zipf_indices(nprng, rows, len(profiles)).tolist()
    host_idx = _zipf_indices(nprng, rows, len(hosts), s=0.8).tolist()
    user_idx = _zipf_indices(nprng, rows, len(users), s=0.9).tolist()
    parent_draw = nprng.random(rows).tolist()
    pick = nprng.random(rows).tolist()
    integrity_draw = nprng.random(rows).tolist()
    base_time = np.datetime64("2026-11-02T08:00:00", "ms")
    ms = np.cumsum(nprng.exponential(2.0, rows)).astype(np.int64)

    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    parent_of = [0] * rows
    user_of: list[str] = []
    for i in range(rows):
        p = profiles[image_idx[i]]
        kind = p.kind if p.kind != "a" else ("s" if pick[i] < 0.4 else "u")
        if p.user:
            user = p.user
        elif kind == "s":
            user = SERVICE_USERS[0 if pick[i] < 0.3 or pick[i] > 0.55 else (1 if pick[i] < 0.45 else 2)]
        else:
            user = users[user_idx[i]]
        user_of.append(user)
        draw = parent_draw[i]
        known = fixed.get(image_idx[i])
        if draw < 0.01:
            parent = image_idx[(i * 7919) % rows]  # now and then anything starts anything
        elif known is not None and known >= 0 and (draw < 0.9 or known != image_idx[i]):
            parent = known
        else:
            parents = parents_console if known == -1 else (parents_system if kind == "s" else parents_user)
            parent = parents[int(draw * 100003) % len(parents)]
        parent_of[i] = parent
        templates = p.templates
        cols["CommandLine"].append(filler.fill(templates[int(pick[i] * 977) % len(templates)], user))
        pp = profiles[parent]
        cols["ParentCommandLine"].append(filler.fill(pp.templates[int(pick[i] * 331) % len(pp.templates)], user))
        name = user.rsplit("\\", 1)[-1]
        if kind == "s":
            cols["CurrentDirectory"].append("C:\\Windows\\system32\\")
            cols["IntegrityLevel"].append("System")
        else:
            cols["CurrentDirectory"].append(
                f"C:\\Users\\{name}\\" if integrity_draw[i] < 0.6 else p.image.rsplit("\\", 1)[0] + "\\")
            cols["IntegrityLevel"].append("Medium" if integrity_draw[i] < 0.85 else "High")

    guid = f"{rng.getrandbits(32):08X}"
    cols["EventID"] = [1] * rows
    cols["Provider_Name"] = ["Microsoft-Windows-Sysmon"] * rows
    cols["Channel"] = ["Microsoft-Windows-Sysmon/Operational"] * rows
    cols["Computer"] = [hosts[h] for h in host_idx]
    stamps = pa.array(base_time + ms.astype("timedelta64[ms]"), pa.timestamp("ms"))
    cols["UtcTime"] = pc.strftime(stamps, "%Y-%m-%d %H:%M:%S").to_pylist()  # %S has the .fff
    pids = nprng.integers(100, 65000, size=(rows, 2)).tolist()
    seq = nprng.integers(0, 1 << 32, size=rows).tolist()
    cols["ProcessGuid"] = [f"{{{guid}-{s >> 16:04X}-{s & 0xFFFF:04X}-0000-0010{i:08X}}}" for i, s in enumerate(seq)]
    cols["ParentProcessGuid"] = [f"{{{guid}-{s & 0xFFFF:04X}-{s >> 16:04X}-0000-0010{(i * 31) % (1 << 32):08X}}}"
                                 for i, s in enumerate(seq)]
    cols["ProcessId"] = [str(x) for x, _ in pids]
    cols["ParentProcessId"] = [str(x) for _, x in pids]
    for name, attr in (("Image", "image"), ("FileVersion", "version"), ("Description", "description"),
                       ("Product", "product"), ("Company", "company"), ("OriginalFileName", "original"),
                       ("Hashes", "hashes")):
        cols[name] = [getattr(profiles[j], attr) for j in image_idx]
    cols["ParentImage"] = [profiles[j].image for j in parent_of]
    cols["User"] = user_of
    cols["ParentUser"] = [u if profiles[j].kind != "s" else SERVICE_USERS[0] for u, j in zip(user_of, parent_of)]
    session = {u: "0" if u.startswith("NT AUTHORITY") else str(1 + len(u) % 3) for u in set(user_of)}
    cols["TerminalSessionId"] = [session[u] for u in user_of]
    logon = {u: f"0x{int(hashlib.md5(u.encode(), usedforsecurity=False).hexdigest()[:6], 16):x}" for u in set(user_of)}
    cols["LogonId"] = [logon[u] for u in user_of]
    cols["LogonGuid"] = [f"{{{guid}-0000-0000-0000-{logon[u][2:].zfill(12).upper()}}}" for u in user_of]

    planted: list[tuple[int, str, str]] = []
    if positives is not None:
        _plant(cols, rows, rng, positives, regression_rate, synth_rate, planted)

    types = {"EventID": pa.int64()}
    arrays = {}
    for name in COLUMNS:
        array = pa.array(cols[name], type=types.get(name, pa.string()))
        if dictionary and name in DICTIONARY_COLUMNS:
            array = array.dictionary_encode()
        arrays[name] = array
    return pa.table(arrays), planted


def _plant(cols: dict[str, list[Any]], rows: int, rng: random.Random, pos: Positives,
           regression_rate: float, synth_rate: float, planted: list[tuple[int, str, str]]) -> None:
    n_reg = round(rows * regression_rate) if pos.regression else 0
    n_syn = round(rows * synth_rate) if pos.rules else 0
    if n_reg + n_syn == 0:
        return
    slots = rng.sample(range(rows), min(rows, n_reg + n_syn))
    order = list(range(len(pos.regression)))
    rng.shuffle(order)
    rule_order = list(range(len(pos.rules)))
    rng.shuffle(rule_order)
    for k, row in enumerate(slots[:n_reg]):
        event, ids = pos.regression[order[k % len(order)]]
        for c in COLUMNS:
            cols[c][row] = event.get(c)
        for rid in ids:
            planted.append((row, rid, "regression"))
    for k, row in enumerate(slots[n_reg:]):
        event = {c: cols[c][row] for c in COLUMNS}
        for attempt in range(4):
            index = rule_order[(k + attempt * 7919) % len(rule_order)]  # every rule in turn
            made = _synthesize(event, index, pos, rng)
            if made is not None:
                for c in COLUMNS:
                    cols[c][row] = made.get(c)
                planted.append((row, pos.program.rules[index]["id"], "synthesized"))
                break
    planted.sort()


def image_column(rows: int, seed: int = 1, dictionary: bool = False, cloudflared_rate: float = 1e-4) -> pa.Table:
    """A one-column table (Image) with the same Zipf spread of image paths, fast (no
    per-row Python), with cloudflared.exe in standard and portable locations mixed in at
    `cloudflared_rate`."""
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    users = _users(rng)
    images = [p.image for p in build_profiles(rng, users)]
    extra = ["C:\\Program Files\\cloudflared\\cloudflared.exe",
             "C:\\Program Files (x86)\\cloudflared\\cloudflared.exe",
             "C:\\Users\\Public\\cloudflared.exe",
             "C:\\Users\\alice.smith\\Downloads\\CloudFlared.EXE",
             "C:\\ProgramData\\cf\\cloudflared.exe"]
    dictionary_values = pa.array(images + extra, pa.string())
    idx = _zipf_indices(nprng, rows, len(images)).astype(np.int32)
    hits = nprng.random(rows) < cloudflared_rate
    idx[hits] = len(images) + nprng.integers(0, len(extra), int(hits.sum()))
    array: pa.Array = pa.DictionaryArray.from_arrays(pa.array(idx, pa.int32()), dictionary_values)
    if not dictionary:
        array = array.cast(pa.string())
    return pa.table({"Image": array})


def write_parquet(table: pa.Table, path: str | os.PathLike[str]) -> None:
    pq.write_table(table, path, compression="zstd", row_group_size=128 * 1024)


def read_parquet(path: str | os.PathLike[str]) -> pa.Table:
    return pq.read_table(path)


def compile_with_rules(sources: Any) -> tuple[Any, list[Any]]:
    """(Matcher, the pySigma rules in the matcher's rule order): the reference evaluator
    needs the parsed rules, the engine the program."""
    import sigmarrow
    from sigmarrow.compiler import compile_rules
    from sigmarrow.rules import load_rules

    loaded = load_rules(sources)
    errors = list(loaded.errors)
    matcher = sigmarrow.Matcher(compile_rules(loaded.rules, errors))
    by_id: dict[str, Any] = {}
    for rule in loaded.rules:
        by_id.setdefault(str(rule.id) if rule.id else (rule.title or ""), rule)
    return matcher, [by_id[r.id] for r in matcher.rules]


# ======================================================================================
# Measuring
# ======================================================================================

CLOUDFLARED_RULE_ID = "fadb84f0-4e84-4f6d-a1ce-9ef2bffb6ccd"  # Cloudflared Portable Execution
CLOUDFLARED_RULE = "proc_creation_win_cloudflared_portable_execution.yml"


def best_time(fn: Callable[[], Any], budget: float = 1.5, max_runs: int = 5, min_runs: int = 1) -> tuple[float, Any]:
    """(fastest wall time, result) of `fn`, run until `budget` seconds are spent (at least
    `min_runs`, at most `max_runs` times). The result of every run must be equal."""
    times: list[float] = []
    result: Any = None
    spent = 0.0
    while len(times) < min_runs or (len(times) < max_runs and spent < budget):
        start = time.perf_counter()
        got = fn()
        took = time.perf_counter() - start
        if times and not _same(got, result):
            raise AssertionError(f"two runs of the same measurement disagree: {got!r} != {result!r}")
        result = got
        times.append(took)
        spent += took
    return min(times), result


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray):
        return bool(np.array_equal(a, b))
    return bool(a == b)


@dataclasses.dataclass
class Row:
    """One line of the headline table."""

    work: str
    engine: str
    rows: int
    seconds: float
    answer: str = ""
    baseline: str | None = None  # the engine this row's ratio compares with (work-local)
    note: str = ""

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else float("inf")


@dataclasses.dataclass
class Report:
    """Everything one bench run measured and checked."""

    title: str
    setup: list[str] = dataclasses.field(default_factory=list)
    rows: list[Row] = dataclasses.field(default_factory=list)
    checks: list[str] = dataclasses.field(default_factory=list)
    disagreements: list[str] = dataclasses.field(default_factory=list)
    targets: list[str] = dataclasses.field(default_factory=list)
    extra: list[str] = dataclasses.field(default_factory=list)
    failed: bool = False  # sigmarrow gave a wrong answer

    def rate_of(self, work: str, engine: str) -> float | None:
        for r in self.rows:
            if r.work == work and r.engine == engine:
                return r.rate
        return None

    def markdown(self) -> str:
        out = [f"# {self.title}", ""]
        out += [f"- {line}" for line in self.setup] + [""]
        out += ["| work | engine | rows | best time | rows/s | ratio | answer |",
                "|---|---|---:|---:|---:|---:|---|"]
        for r in self.rows:
            ratio = ""
            ours = self.rate_of(r.work, r.baseline) if r.baseline else None
            if ours and r.engine.startswith("sigmarrow"):
                ratio = f"{r.rate / ours:.2f}\u00d7 of 1 thread"
            elif ours:
                ratio = f"sigmarrow {_fmt_ratio(ours / r.rate)}"
            out.append(f"| {r.work} | {r.engine} | {r.rows:,} | {_fmt_s(r.seconds)} | "
                       f"{_fmt_rate(r.rate)} | {ratio} | {r.answer}{(' ' + r.note) if r.note else ''} |")
        if self.targets:
            out += ["", "## Targets of issue 3", ""] + [f"- {t}" for t in self.targets]
        out += ["", "## Answers checked", ""] + [f"- {c}" for c in self.checks]
        if self.disagreements:
            out += ["", "## Disagreements", ""] + [f"- {d}" for d in self.disagreements]
        if self.extra:
            out += [""] + self.extra
        return "\n".join(out) + "\n"


def _fmt_ratio(ratio: float) -> str:
    return f"{ratio:,.0f}\u00d7" if ratio >= 100 else f"{ratio:.1f}\u00d7"


def _fmt_s(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 1 else f"{seconds:,.2f} s"


def _fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:,.1f}M"
    if rate >= 1e4:
        return f"{rate / 1e3:,.0f}k"
    return f"{rate:,.0f}"


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    cpu = cpu_model()
    from sigmarrow.matcher import default_threads

    try:
        mem = f", {os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB RAM"
    except (ValueError, OSError, AttributeError):
        mem = ""
    return f"{cpu}, {default_threads()} cores available (nproc){mem}, {platform.system()} {platform.release()}"


def versions() -> str:
    import importlib.metadata as md

    parts = [f"Python {platform.python_version()}"]
    for name in ("sigmarrow", "pyarrow", "pysigma", "duckdb", "pysigma-backend-duckdb", "polars"):
        try:
            parts.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            pass
    return ", ".join(parts)


def rule_counts(matcher: Any, data: Any, threads: int) -> np.ndarray:
    """Hits per rule (in the matcher's rule order)."""
    _, rules = matcher.match_indices(data, threads=threads)
    return np.bincount(rules.to_numpy(zero_copy_only=False).astype(np.int64), minlength=len(matcher.rules))


def hit_pairs(matcher: Any, data: Any, threads: int | None = None) -> set[tuple[int, int]]:
    rows, rules = matcher.match_indices(data, threads=threads)
    return set(zip(rows.to_pylist(), rules.to_pylist()))


# --- DuckDB with pySigma's DuckDB backend -----------------------------------------------


def duckdb_queries(rules: Sequence[Any]) -> tuple[list[str | None], list[str]]:
    """pySigma DuckDB-backend SQL per rule (None where the backend refuses), and why not."""
    import copy

    from sigma_backend_duckdb import DuckDBBackend

    backend = DuckDBBackend()
    queries: list[str | None] = []
    refused = []
    for rule in rules:
        try:
            converted = backend.convert_rule(copy.deepcopy(rule))
            queries.append(converted[0] if len(converted) == 1 else None)
            if len(converted) != 1:
                refused.append(f"{rule.title}: {len(converted)} queries")
        except Exception as e:  # noqa: BLE001 - any backend failure is reported
            queries.append(None)
            refused.append(f"{rule.title}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return queries, refused


def duckdb_connection(table: pa.Table, fields: Sequence[str], threads: int) -> Any:
    """An in-memory DuckDB holding `table` as native table `logs` (the fastest way for DuckDB
    to scan it), with a NULL column for every rule field the data lacks, and `__row`."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads={int(threads)}")
    src = table.append_column("__row", pa.array(np.arange(table.num_rows, dtype=np.int64)))
    src = pa.table({name: (col.cast(col.type.value_type) if pa.types.is_dictionary(col.type) else col)
                    for name, col in zip(src.column_names, src.columns)})
    con.register("src", src)
    con.execute("CREATE TABLE logs AS SELECT * FROM src")
    con.unregister("src")
    for name in fields:
        if name not in table.column_names:
            con.execute(f'ALTER TABLE logs ADD COLUMN "{name}" VARCHAR')
    return con


def _count_query(sql: str) -> str:
    return sql.replace("SELECT * FROM logs WHERE", "SELECT count(*) FROM logs WHERE", 1)


def duckdb_counts(con: Any, queries: Sequence[str | None],
                  titles: Sequence[str] | None = None) -> tuple[float, np.ndarray, list[str]]:
    """(total seconds, count per rule (-1 where no query or it failed), failures): one
    query per rule, as a user of the SQL backend runs them."""
    counts = np.full(len(queries), -1, dtype=np.int64)
    errors = []
    start = time.perf_counter()
    for i, sql in enumerate(queries):
        if sql is None:
            continue
        try:
            counts[i] = con.execute(_count_query(sql)).fetchone()[0]
        except Exception as e:  # noqa: BLE001 - reported
            name = titles[i] if titles else f"rule {i}"
            errors.append(f"{name}: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
    return time.perf_counter() - start, counts, errors


def duckdb_rows(con: Any, sql: str) -> set[int]:
    return {r[0] for r in con.execute(sql.replace("SELECT * FROM logs WHERE", "SELECT __row FROM logs WHERE", 1)).fetchall()}


_ILIKE = re.compile(r"ILIKE '((?:[^']|'')*)'")


def sql_suspects(sql: str) -> list[str]:
    """Known DuckDB-backend semantic differences that this query may hit."""
    found = []
    if re.search(r"\bNOT\b", sql):
        found.append("NOT over NULL drops the event")
    for pattern in _ILIKE.findall(sql):
        inner = pattern.strip("%")
        if "_" in inner or "%" in inner:
            found.append("unescaped _/% in ILIKE")
            break
    if re.search(r"[\w\"]=\'", sql):
        found.append("case-sensitive =")
    if "regexp_matches" in sql:
        found.append("regex dialect")
    if " GLOB " in sql:
        found.append("GLOB")
    return found


# --- the reference -----------------------------------------------------------------------


def reference_pairs(rules: Sequence[Any], events: Sequence[dict[str, Any]],
                    pairs: Iterable[tuple[int, int]]) -> dict[tuple[int, int], bool]:
    """The reference evaluator's verdict on each (row, rule index) pair."""
    from sigmarrow import reference

    out = {}
    for row, rule in pairs:
        try:
            out[(row, rule)] = reference.evaluate_rule(rules[rule], events[row], None)
        except ValueError:
            out[(row, rule)] = False
    return out


def _reference_worker(args: tuple[list[str], list[dict[str, Any]]]) -> list[int]:
    files, events = args
    from sigmarrow import reference

    _, rules = compile_with_rules([Path(f) for f in files])
    counts = [0] * len(rules)
    for event in events:
        for i, rule in enumerate(rules):
            try:
                if reference.evaluate_rule(rule, event, None):
                    counts[i] += 1
            except ValueError:
                pass
    return counts


def reference_counts(files: Sequence[Path], events: list[dict[str, Any]], processes: int) -> np.ndarray:
    """Per-rule hit counts of the reference over `events`, split across processes (the
    reference takes ~1 ms per rule and event)."""
    import concurrent.futures as cf

    chunks = [events[i::processes] for i in range(processes)]
    args = [([str(f) for f in files], chunk) for chunk in chunks if chunk]
    if len(args) == 1:
        return np.array(_reference_worker(args[0]), dtype=np.int64)
    with cf.ProcessPoolExecutor(len(args)) as pool:
        results = list(pool.map(_reference_worker, args))
    return np.sum(np.array(results, dtype=np.int64), axis=0)


# ======================================================================================
# The bench
# ======================================================================================


@dataclasses.dataclass
class Config:
    """Sizes and switches of one bench run (``sigmarrow bench`` defaults: about a minute)."""

    sigma_dir: Path
    events: int = 200_000
    engine_seconds: float = 3.0  # cap on one sigmarrow timing run: fewer events if slower
    budget: float = 1.0  # seconds of repeats per peer measurement (best of up to 3 runs)
    duckdb_events: int = 10_000
    duckdb_threads: tuple[int, ...] = (0,)  # 0 = all cores
    check_events: int = 2_000
    reference_pairs: int = 3_000
    reference_events: int = 0
    cloudflared_rows: int = 2_000_000
    threads: int = 0  # 0 = all cores
    seed: int = 1
    workdir: Path | None = None
    peers: bool = True
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr, flush=True)


def measure(cfg: Config) -> Report:
    from sigmarrow.matcher import default_threads

    log = cfg.log
    all_threads = cfg.threads or default_threads()
    report = Report(f"sigmarrow bench, {dt.date.today().isoformat()}")
    report.setup.append(f"machine: {machine()}")
    report.setup.append(f"versions: {versions()}")
    report.setup.append(f"load average at start: {_load()} (other work on the machine skews the numbers)")

    # --- rules ---
    files = process_creation_files(cfg.sigma_dir)
    log(f"compiling {len(files)} process_creation rules ...")
    start = time.perf_counter()
    matcher, rules = compile_with_rules(files)
    compile_s = time.perf_counter() - start
    n_rules = len(matcher.rules)
    report.setup.append(
        f"rules: {n_rules:,} Windows process_creation rules of {cfg.sigma_dir} ({', '.join(RULE_FOLDERS)}); "
        f"{len(matcher.errors)} failed to compile; compiled in {compile_s:.1f} s "
        f"({len(matcher.program.atoms):,} atoms over {len(matcher.fields)} fields)")

    # --- data ---
    positives = load_positives(cfg.sigma_dir, matcher, rules)
    workdir = cfg.workdir or Path(tempfile.mkdtemp(prefix="sigmarrow-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    log(f"generating {cfg.events:,} events in {workdir} ...")
    start = time.perf_counter()
    table, planted = generate_events(cfg.events, cfg.seed, positives=positives)
    gen_s = time.perf_counter() - start
    path = workdir / "events.parquet"
    write_parquet(table, path)
    start = time.perf_counter()
    table = read_parquet(path)
    read_s = time.perf_counter() - start
    cmd_len = pc.mean(pc.binary_length(table.column("CommandLine"))).as_py()
    report.setup.append(
        f"data: {table.num_rows:,} synthetic Sysmon EventID 1 events, seed {cfg.seed} "
        f"({len(pc.unique(table.column('Image'))):,} distinct Image, "
        f"{len(pc.unique(table.column('CommandLine'))):,} distinct CommandLine averaging {cmd_len:.0f} bytes, "
        f"{sum(1 for p in planted if p[2] == 'regression'):,} regression_data events and "
        f"{sum(1 for p in planted if p[2] == 'synthesized'):,} synthesized positives planted); "
        f"generated in {gen_s:.1f} s; Parquet (zstd) {path.stat().st_size / 2**20:.1f} MiB read back in "
        f"{read_s * 1000:.0f} ms (not included below: every engine gets the table in memory)")

    # --- sigmarrow, whole rule set ---
    work = f"{n_rules:,} rules"
    probe = table.slice(0, min(table.num_rows, 10_000))
    start = time.perf_counter()
    matcher.match_indices(probe, threads=1)
    est = probe.num_rows / max(time.perf_counter() - start, 1e-9)
    n = int(min(table.num_rows, max(10_000, est * cfg.engine_seconds)))
    sample = table.slice(0, n)
    log(f"sigmarrow on {n:,} events (est. {est:,.0f} events/s on 1 thread) ...")
    counts_by_threads = {}
    for threads in dict.fromkeys((1, all_threads)):
        seconds, counts = best_time(lambda t=threads: rule_counts(matcher, sample, t), budget=cfg.engine_seconds)
        counts_by_threads[threads] = counts
        report.rows.append(Row(work, f"sigmarrow, {threads} thread{'s' if threads > 1 else ''}", n, seconds,
                               f"{int(counts.sum()):,} hits, {int((counts > 0).sum()):,} rules hit",
                               None if threads == 1 else "sigmarrow, 1 thread"))
    # The same events with the low-cardinality columns dictionary-encoded (as Parquet stores
    # them, and as a reader may hand them over): the engine may evaluate each value once.
    encoded = pa.table({name: (pc.dictionary_encode(col) if name in DICTIONARY_COLUMNS else col)
                        for name, col in zip(sample.column_names, sample.columns)})
    seconds, counts = best_time(lambda: rule_counts(matcher, encoded, 1), budget=cfg.engine_seconds)
    same = np.array_equal(counts, counts_by_threads[1])
    plain_rate = report.rate_of(work, "sigmarrow, 1 thread") or 1.0
    report.rows.append(Row(
        work + ", dictionary-encoded Image, ParentImage, User, ...", "sigmarrow, 1 thread", n, seconds,
        "per-rule counts " + ("equal the plain run's" if same else "DIFFER from the plain run's"),
        note=f"({n / seconds / plain_rate:.2f}\u00d7 the plain run)"))
    report.failed |= not same
    if len(counts_by_threads) > 1:
        a, b = counts_by_threads.values()
        report.checks.append("1 thread and all threads give the same per-rule counts" if np.array_equal(a, b)
                              else "1 thread and all threads DISAGREE on per-rule counts")
        report.failed |= not np.array_equal(a, b)

    # --- DuckDB, one query per rule ---
    if cfg.peers and _have("duckdb") and _have("sigma_backend_duckdb"):
        queries, refused = duckdb_queries(rules)
        dsample = table.slice(0, min(cfg.duckdb_events, table.num_rows))
        ours = rule_counts(matcher, dsample, 1)
        for threads in cfg.duckdb_threads:
            threads = threads or all_threads
            log(f"DuckDB, {sum(q is not None for q in queries):,} queries over {dsample.num_rows:,} events, "
                f"{threads} thread(s) ...")
            con = duckdb_connection(dsample, matcher.fields, threads)
            duckdb_counts(con, queries[:20])  # warm up
            seconds, counts, errors = duckdb_counts(con, queries, [r.title for r in matcher.rules])
            con.close()
            same = [i for i in range(n_rules) if counts[i] >= 0 and counts[i] == ours[i]]
            diff = [i for i in range(n_rules) if counts[i] >= 0 and counts[i] != ours[i]]
            report.rows.append(Row(
                work, f"DuckDB {_version('duckdb')}, pySigma DuckDB-backend SQL, one query per rule, "
                      f"{threads} thread{'s' if threads > 1 else ''}",
                dsample.num_rows, seconds,
                f"per-rule counts equal sigmarrow's on {len(same):,} of {len(same) + len(diff):,} rules",
                "sigmarrow, 1 thread",
                f"({len(refused)} rules not convertible, {len(errors)} queries failed"
                + ("; on few events DuckDB's fixed cost per query weighs more" if dsample.num_rows < 100_000 else "")
                + ")"))
            if threads == (cfg.duckdb_threads[0] or all_threads):
                for i in diff[:40]:
                    report.disagreements.append(
                        f"DuckDB vs sigmarrow on the timing sample: {rules[i].title} ({matcher.rules[i].id}): "
                        f"sigmarrow {ours[i]}, DuckDB {counts[i]}; "
                        f"suspects: {', '.join(sql_suspects(queries[i] or '')) or 'none known'}")
                if len(diff) > 40:
                    report.disagreements.append(f"... and {len(diff) - 40} more rules")
                for line in refused + errors:
                    report.disagreements.append(f"DuckDB could not run: {line}")
    elif cfg.peers:
        report.checks.append("DuckDB peer skipped: `pip install duckdb pysigma-backend-duckdb`")

    # --- answers: a positive-rich sample against the reference (and DuckDB, row by row) ---
    _check_answers(cfg, report, matcher, rules, positives, files)

    # --- the Cloudflared rule alone ---
    _cloudflared(cfg, report, all_threads)

    _targets(report, work)
    report.setup.append(f"load average at the end: {_load()}")
    return report


def _load() -> str:
    try:
        return ", ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _version(name: str) -> str:
    import importlib.metadata as md

    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return "?"


def _have(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _check_answers(cfg: Config, report: Report, matcher: Any, rules: list[Any], positives: Positives,
                   files: list[Path]) -> None:
    log = cfg.log
    log(f"checking answers on {cfg.check_events:,} positive-rich events against the reference ...")
    check, planted = generate_events(cfg.check_events, cfg.seed + 1, positives=positives,
                                     regression_rate=0.05, synth_rate=0.10)
    events = check.to_pylist()
    index = {r.id: i for i, r in enumerate(matcher.rules)}
    ours = hit_pairs(matcher, check)
    planted_pairs = {(row, index[rid]) for row, rid, _ in planted if rid in index}
    rng = random.Random(cfg.seed)
    n_rules = len(rules)
    misses: set[tuple[int, int]] = set()
    tries = 0
    while len(misses) < cfg.reference_pairs and tries < cfg.reference_pairs * 3:
        tries += 1
        pair = (rng.randrange(len(events)), rng.randrange(n_rules))
        if pair not in ours:
            misses.add(pair)

    duck_pairs: set[tuple[int, int]] = set()
    duck_rows: dict[int, set[int]] = {}
    queries: list[str | None] = []
    if cfg.peers and _have("duckdb") and _have("sigma_backend_duckdb"):
        queries, _ = duckdb_queries(rules)
        con = duckdb_connection(check, matcher.fields, cfg.threads or 2)
        for i, sql in enumerate(queries):
            if sql is None:
                continue
            try:
                duck_rows[i] = duckdb_rows(con, sql)
            except Exception:  # noqa: BLE001, S112 - counted with the timing run
                continue
        con.close()
        for i, got in duck_rows.items():
            mine = {row for row, rule in ours if rule == i}
            for row in sorted(got ^ mine)[:3]:
                duck_pairs.add((row, i))

    pairs = ours | planted_pairs | misses | duck_pairs
    start = time.perf_counter()
    verdict = reference_pairs(rules, events, pairs)
    ref_s = time.perf_counter() - start
    false_pos = sorted(p for p in ours if not verdict[p])
    false_neg = sorted(p for p in pairs if verdict[p] and p not in ours)
    report.checks.append(
        f"sigmarrow vs the Python reference on {len(events):,} positive-rich events "
        f"({len(planted_pairs):,} planted positives): {len(pairs):,} (event, rule) pairs checked in "
        f"{ref_s:.1f} s: all {len(ours):,} sigmarrow hits, the planted positives, "
        f"{len(misses):,} random non-hits{', the rows where DuckDB differs' if duck_pairs else ''}: "
        + ("all agree" if not false_pos and not false_neg else
           f"{len(false_pos)} hits the reference rejects, {len(false_neg)} matches sigmarrow misses"))
    report.failed |= bool(false_pos or false_neg)
    for row, rule in (false_pos + false_neg)[:30]:
        fields = {k: events[row].get(k) for k in matcher.rules[rule].fields}
        report.disagreements.append(
            f"sigmarrow vs reference: {matcher.rules[rule].title} ({matcher.rules[rule].id}) on "
            f"{fields}: sigmarrow {'hit' if (row, rule) in ours else 'no hit'}, reference {verdict[(row, rule)]}")
    rules_hit = len({rule for _, rule in ours})
    report.checks.append(f"the check sample hits {rules_hit:,} of {n_rules:,} rules in sigmarrow")

    if duck_rows:
        right = Counter()
        rules_differ = 0
        for i, got in duck_rows.items():
            mine = {row for row, rule in ours if rule == i}
            if got == mine:
                continue
            rules_differ += 1
            for row in sorted(got ^ mine)[:3]:
                ref = verdict.get((row, i))
                sides = "sigmarrow" if ref == ((row, i) in ours) else "DuckDB"
                right[sides] += 1
                if len(report.disagreements) < 120:
                    report.disagreements.append(
                        f"DuckDB vs sigmarrow on the check sample: {matcher.rules[i].title}: row {row} "
                        f"{'only DuckDB' if row in got else 'only sigmarrow'} matches; the reference sides "
                        f"with {sides}; suspects: {', '.join(sql_suspects(queries[i] or '')) or 'none known'}")
        report.checks.append(
            f"DuckDB (pySigma DuckDB-backend SQL) vs sigmarrow, row by row on the check sample: "
            f"{len(duck_rows) - rules_differ:,} of {len(duck_rows):,} rules give the same rows; on the "
            f"{rules_differ} that differ the reference sides with sigmarrow {right['sigmarrow']} times and "
            f"with DuckDB {right['DuckDB']} times (up to 3 rows per rule checked)")

    if cfg.reference_events:
        n = min(cfg.reference_events, len(events))
        procs = cfg.threads or os.cpu_count() or 1
        log(f"reference per-rule counts on {n} events x {n_rules} rules ({procs} processes) ...")
        start = time.perf_counter()
        ref = reference_counts(files, events[:n], procs)
        ref_s = time.perf_counter() - start
        ours_n = rule_counts(matcher, check.slice(0, n), 1)
        diff = [i for i in range(n_rules) if ref[i] != ours_n[i]]
        report.checks.append(
            f"complete per-rule counts of the reference on the first {n:,} check events "
            f"({n * n_rules:,} evaluations, {ref_s:.0f} s): "
            + ("equal to sigmarrow's on every rule" if not diff else f"{len(diff)} rules DIFFER"))
        report.failed |= bool(diff)
        for i in diff[:30]:
            report.disagreements.append(f"per-rule count: {matcher.rules[i].title}: sigmarrow {ours_n[i]}, "
                                        f"reference {ref[i]}")


def cloudflared_expected(table: pa.Table, rule: Any) -> int:
    """The true count of the Cloudflared rule over a one-column Image table: the reference
    evaluates each distinct value once, weighted by how often it occurs."""
    from sigmarrow import reference

    column = table.column("Image").combine_chunks()
    if not pa.types.is_dictionary(column.type):
        column = column.dictionary_encode()
    values = column.dictionary.to_pylist()
    freq = np.bincount(column.indices.to_numpy(zero_copy_only=False), minlength=len(values))
    return int(sum(int(freq[i]) for i, v in enumerate(values) if reference.evaluate_rule(rule, {"Image": v}, None)))


def _cloudflared_peers(table: pa.Table, sql: str | None) -> list[tuple[str, Callable[[], int]]]:
    peers: list[tuple[str, Callable[[], int]]] = []
    column = table.column("Image")
    is_dict = pa.types.is_dictionary(column.type)
    sel, f1, f2 = "\\cloudflared.exe", ":\\program files (x86)\\cloudflared\\", ":\\program files\\cloudflared\\"

    def arrow_rule(values: pa.Array | pa.ChunkedArray, lower: bool) -> Any:
        if lower:
            low = pc.utf8_lower(values)
            a = pc.ends_with(low, sel)
            b = pc.or_(pc.match_substring(low, f1), pc.match_substring(low, f2))
        else:
            a = pc.ends_with(values, sel, ignore_case=True)
            b = pc.or_(pc.match_substring(values, f1, ignore_case=True),
                       pc.match_substring(values, f2, ignore_case=True))
        return pc.and_(a, pc.invert(b))

    for lower in (True, False):
        label = "utf8_lower + ends_with/match_substring" if lower else "ends_with/match_substring, ignore_case"
        if is_dict:
            def run_dict(lower: bool = lower) -> int:
                total = 0
                for chunk in column.chunks:
                    verdict = arrow_rule(chunk.dictionary, lower)
                    total += pc.sum(pc.take(verdict, chunk.indices)).as_py() or 0
                return int(total)
            peers.append((f"pyarrow.compute {pa.__version__} on the dictionary, then take ({label})", run_dict))
        else:
            def run_plain(lower: bool = lower) -> int:
                return int(pc.sum(arrow_rule(column, lower)).as_py() or 0)
            peers.append((f"pyarrow.compute {pa.__version__} ({label})", run_plain))

    if _have("polars"):
        import polars as pl

        df = pl.from_arrow(table)
        if is_dict:
            df = df.with_columns(pl.col("Image").cast(pl.String))  # polars string ops need String
        for variant in ("lower", "regex"):
            if variant == "lower":
                low = pl.col("Image").str.to_lowercase()
                expr = low.str.ends_with(sel) & ~(low.str.contains(f1, literal=True) | low.str.contains(f2, literal=True))
            else:
                img = pl.col("Image")
                expr = img.str.contains("(?i)" + re.escape(sel) + "$") & ~img.str.contains(
                    "(?i)" + re.escape(f1) + "|" + re.escape(f2))
            how = "to_lowercase + ends_with/contains" if variant == "lower" else "(?i) regex"
            cast = ", Categorical cast to String first" if is_dict else ""
            peers.append((f"polars {pl.__version__} ({how}{cast})",
                          lambda e=expr, d=df: int(d.select(e.sum()).item() or 0)))
    if sql and _have("duckdb"):
        con = duckdb_connection(table, ["Image"], 1)
        count_sql = _count_query(sql)
        peers.append((f"DuckDB {_version('duckdb')}, 1 thread, pySigma DuckDB-backend SQL (native table)",
                      lambda c=con, q=count_sql: int(c.execute(q).fetchone()[0])))
    return peers


def _cloudflared(cfg: Config, report: Report, all_threads: int) -> None:

    log = cfg.log
    path = next((p for p in process_creation_files(cfg.sigma_dir) if p.name == CLOUDFLARED_RULE), None)
    if path is None:
        report.checks.append(f"Cloudflared rule {CLOUDFLARED_RULE} not found: section skipped")
        return
    matcher, rules = compile_with_rules(path)
    sql = None
    if cfg.peers and _have("sigma_backend_duckdb"):
        queries, _ = duckdb_queries(rules)
        sql = queries[0]
    for dictionary in (False, True):
        work = f"Cloudflared rule, {'dictionary-encoded' if dictionary else 'plain'} Image"
        log(f"{work}: {cfg.cloudflared_rows:,} rows ...")
        table = image_column(cfg.cloudflared_rows, cfg.seed, dictionary=dictionary)
        expected = cloudflared_expected(table, rules[0])
        ours_engine = "sigmarrow, 1 thread"
        for threads in dict.fromkeys((1, all_threads)):
            seconds, got = best_time(lambda t=threads, d=table: len(matcher.match_indices(d, threads=t)[0]),
                                     budget=cfg.budget)
            name = f"sigmarrow, {threads} thread{'s' if threads > 1 else ''}"
            report.rows.append(Row(work, name, table.num_rows, seconds, _answer(got, expected),
                                   None if threads == 1 else ours_engine))
            report.failed |= got != expected
        if not cfg.peers:
            continue
        for name, fn in _cloudflared_peers(table, sql):
            seconds, got = best_time(fn, budget=cfg.budget, max_runs=3)
            report.rows.append(Row(work, name, table.num_rows, seconds, _answer(got, expected), ours_engine))


def _answer(got: int, expected: int) -> str:
    return f"{got:,} hits = expected" if got == expected else f"{got:,} hits, EXPECTED {expected:,}"


def _targets(report: Report, work: str) -> None:
    def rate(w: str, e: str) -> float | None:
        return report.rate_of(w, e)

    one = rate(work, "sigmarrow, 1 thread")
    lines = []
    if one:
        lines.append(f"full set, one thread \u2265 5M events/s: {_fmt_rate(one)} events/s "
                     f"({'met' if one >= 5e6 else 'not met'})")
        duck = [r for r in report.rows if r.work == work and r.engine.startswith("DuckDB")]
        for r in duck:
            lines.append(f"\u2265 1,000\u00d7 {r.engine.split(',')[0]} per-rule SQL ({r.engine.rsplit(',', 1)[-1].strip()}): "
                         f"{one / r.rate:,.0f}\u00d7 ({'met' if one / r.rate >= 1000 else 'not met'})")
        multi = [r for r in report.rows if r.work == work and r.engine.startswith("sigmarrow,") and r.engine != "sigmarrow, 1 thread"]
        for r in multi:
            lines.append(f"{r.engine.split(', ')[1]} \u2265 1.8\u00d7 one thread: {r.rate / one:.2f}\u00d7 "
                         f"({'met' if r.rate / one >= 1.8 else 'not met'})")
    plain = "Cloudflared rule, plain Image"
    cf = rate(plain, "sigmarrow, 1 thread")
    if cf:
        for r in report.rows:
            if r.work != plain:
                continue
            if r.engine.startswith("DuckDB"):
                lines.append(f"Cloudflared \u2265 10\u00d7 DuckDB 1 thread: {cf / r.rate:.1f}\u00d7 "
                             f"({'met' if cf / r.rate >= 10 else 'not met'})")
        arrow = [r for r in report.rows if r.work == plain and r.engine.startswith("pyarrow")]
        if arrow:
            best = max(arrow, key=lambda r: r.rate)
            lines.append(f"Cloudflared \u2265 20\u00d7 pyarrow.compute (its faster variant): {cf / best.rate:.1f}\u00d7 "
                         f"({'met' if cf / best.rate >= 20 else 'not met'})")
    cfd = rate("Cloudflared rule, dictionary-encoded Image", "sigmarrow, 1 thread")
    if cfd:
        lines.append(f"Cloudflared on dictionary-encoded Image \u2265 200M rows/s per core: {_fmt_rate(cfd)} rows/s "
                     f"({'met' if cfd >= 2e8 else 'not met'})")
    report.targets += lines


# ======================================================================================
# The command
# ======================================================================================


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--sigma-dir", metavar="DIR",
                   help="a SigmaHQ checkout with rules/ and regression_data/ (default: "
                        "$SIGMARROW_SIGMA_DIR, or shared/sigma beside the source tree)")
    p.add_argument("--events", type=int, default=200_000, metavar="N",
                   help="synthetic events to generate (default: 200000)")
    p.add_argument("--engine-seconds", type=float, default=3.0, metavar="S",
                   help="longest sigmarrow timing run; fewer events are timed if slower (default: 3)")
    p.add_argument("--duckdb-events", type=int, default=10_000, metavar="N",
                   help="events DuckDB runs every rule's query over (default: 10000; DuckDB pays "
                        "~1 ms per query, so few events understate its speed)")
    p.add_argument("--cloudflared-rows", type=int, default=2_000_000, metavar="N",
                   help="rows of the Cloudflared (one rule, Image column) comparison (default: 2000000)")
    p.add_argument("--check-events", type=int, default=2_000, metavar="N",
                   help="positive-rich events checked against the reference (default: 2000)")
    p.add_argument("--reference-pairs", type=int, default=3_000, metavar="N",
                   help="random (event, rule) non-hits checked against the reference (default: 3000)")
    p.add_argument("--reference-events", type=int, default=0, metavar="N",
                   help="also compare complete per-rule counts with the reference on N check events "
                        "(slow: about 1 ms per rule and event)")
    p.add_argument("--threads", "-j", type=int, default=0, metavar="N",
                   help="the 'all threads' count (default: all cores)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--no-peers", action="store_true", help="measure sigmarrow only")
    p.add_argument("--keep", metavar="DIR", help="write the generated data to DIR and keep it")
    p.add_argument("--output", "-o", metavar="FILE.md", help="also write the report as Markdown")


def config_from_args(args: argparse.Namespace) -> Config:
    from sigmarrow.errors import UsageError

    sigma_dir = find_sigma_dir(args.sigma_dir)
    if sigma_dir is None:
        raise UsageError("no SigmaHQ checkout found: pass --sigma-dir DIR (a clone of SigmaHQ/sigma) "
                         "or set SIGMARROW_SIGMA_DIR")
    return Config(
        sigma_dir=sigma_dir, events=args.events, engine_seconds=args.engine_seconds,
        duckdb_events=args.duckdb_events, check_events=args.check_events,
        reference_pairs=args.reference_pairs, reference_events=args.reference_events,
        cloudflared_rows=args.cloudflared_rows, threads=args.threads, seed=args.seed,
        workdir=Path(args.keep) if args.keep else None, peers=not args.no_peers)


def command_line(name: str = "sigmarrow bench") -> str:
    """The command as the user typed it: `sigmarrow bench ARGS` (also under python -m)."""
    argv = list(sys.argv[1:])
    if name.split()[-1] in argv:
        argv = argv[argv.index(name.split()[-1]) + 1:]
    return " ".join([name, *map(shlex.quote, argv)])


def run(args: argparse.Namespace) -> int:
    """Runs the bench; 0 when every sigmarrow answer checked out, 1 when one did not."""
    cfg = config_from_args(args)
    start = time.perf_counter()
    if cfg.workdir is None:
        with tempfile.TemporaryDirectory(prefix="sigmarrow-bench-") as tmp:
            cfg.workdir = Path(tmp)
            report = measure(cfg)
    else:
        report = measure(cfg)
    report.setup.insert(0, f"command: `{command_line()}`")
    report.setup.append(f"whole run: {time.perf_counter() - start:.0f} s")
    text = report.markdown()
    print(text)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    return 1 if report.failed else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m sigmarrow.bench", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arguments(parser)
    from sigmarrow.errors import UsageError

    try:
        raise SystemExit(run(parser.parse_args()))
    except UsageError as exc:
        raise SystemExit(f"sigmarrow bench: error: {exc}") from None
