"""The one synthetic event generator of the benches: realistic Sysmon process-creation
events (EventID 1) with planted positives.

    python benches/generate.py --rows 1000000 --out events.parquet [--dictionary]

The events have the columns and types ``sigmarrow.evtx`` gives a Sysmon EventID 1 (all
strings but EventID): a Zipf-like spread of about 3,000 image paths (System32, common
applications, and a long tail of versioned and per-user install folders), each with its own
OriginalFileName, Description, Company, FileVersion and Hashes; plausible parents; command
lines of about 60 bytes on average with high cardinality (numbers, GUIDs, user paths).

Positives are planted (unless ``--no-positives``):

- real events: Sysmon EventID 1 records of the SigmaHQ ``regression_data/`` EVTX files
  (``--regression-rate``, default 1 in 2,000);
- synthesized events: a benign event rewritten so that a randomly chosen rule of
  ``--rules`` (default: the Windows process_creation rules of the SigmaHQ checkout) matches
  it, kept only when the reference evaluator (``sigmarrow.reference``) confirms the match
  (``--synth-rate``, default 1 in 1,000);
- fixed events (from Python only, ``generate_events(fixed=...)``): given column values at
  given rows, for benches and examples whose answer is known in advance.

``--positives PATH.parquet`` writes the planted positives as (row, rule_id, source).
Same ``--seed``, same file.

The API: :func:`generate_events` (the events and the planted positives),
:func:`load_positives` (where positives come from), :func:`image_column` (a fast one-column
Image table for one-rule comparisons), :func:`write_parquet`. Used by ``headline.py``,
``bench_engine.py``, ``bench_scan.py``, ``bench_spark.py``, ``bench_literals.py`` and
``examples/make_example.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import random
import re
import string
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

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
    fixed: Mapping[int, Mapping[str, Any]] | None = None,
) -> tuple[pa.Table, list[tuple[int, str, str]]]:
    """`rows` synthetic Sysmon process-creation events, and the planted positives as
    (row, rule_id, source) with source ``regression`` (a real event of the rule's test; the
    rule is expected, not guaranteed, to match that very event) or ``synthesized`` (the
    reference evaluator confirmed the rule matches). `fixed` maps rows to column values
    that replace the generated ones there (no positive is planted on those rows): events
    whose answer the caller knows. Same arguments, same table."""
    fixed = fixed or {}
    for row, values in fixed.items():
        unknown = set(values) - set(COLUMNS)
        if not 0 <= row < rows or unknown:
            raise ValueError(f"fixed event at row {row}: "
                             + (f"unknown columns {sorted(unknown)}" if unknown else f"not in 0..{rows - 1}"))
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
    parent_of_image: dict[int, int] = {}
    for i, p in enumerate(profiles):
        name = p.image.rsplit("\\", 1)[1]
        if p.image.startswith((SYS32, WOW64)) and name in FIXED_PARENT:
            parent_image = FIXED_PARENT[name]
            if parent_image not in by_image:  # e.g. SearchIndexer.exe: a parent only
                by_image[parent_image] = len(profiles)
                profiles.append(Profile(parent_image, parent_image.rsplit("\\", 1)[1], "", WINPROD, MS,
                                        WINVER.format(b=1), _hashes(parent_image), (parent_image,), "s"))
            parent_of_image[i] = by_image[parent_image]
        elif name in SELF_PARENT:
            parent_of_image[i] = i
        elif name in ("conhost.exe",):
            parent_of_image[i] = -1  # a console program
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
        known = parent_of_image.get(image_idx[i])
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
        free = [row for row in range(rows) if row not in fixed]
        _plant(cols, free, rng, positives, regression_rate, synth_rate, planted)
    for row, values in fixed.items():
        for name, value in values.items():
            cols[name][row] = value

    types = {"EventID": pa.int64()}
    arrays = {}
    for name in COLUMNS:
        array = pa.array(cols[name], type=types.get(name, pa.string()))
        if dictionary and name in DICTIONARY_COLUMNS:
            array = array.dictionary_encode()
        arrays[name] = array
    return pa.table(arrays), planted


def _plant(cols: dict[str, list[Any]], free: list[int], rng: random.Random, pos: Positives,
           regression_rate: float, synth_rate: float, planted: list[tuple[int, str, str]]) -> None:
    rows = len(cols["EventID"])
    n_reg = round(rows * regression_rate) if pos.regression else 0
    n_syn = round(rows * synth_rate) if pos.rules else 0
    if n_reg + n_syn == 0:
        return
    slots = rng.sample(free, min(len(free), n_reg + n_syn))
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


def missed_positives(matcher: Any, table: pa.Table, planted: Iterable[tuple[int, str, str]]) -> list[tuple[int, str]]:
    """The synthesized positives (row, rule_id) that `matcher` does not report on `table`:
    the reference confirmed each of them, so the list must be empty."""
    hits = matcher.match(table)
    found = set(zip(hits.column("row").to_pylist(), hits.column("rule_id").to_pylist()))
    return sorted((row, rid) for row, rid, source in planted if source == "synthesized" and (row, rid) not in found)


def main(argv: list[str] | None = None) -> int:
    from _common import compile_with_rules, find_sigma_dir, process_creation_files

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, required=True, metavar="N", help="events to generate")
    p.add_argument("--out", required=True, metavar="PATH", help="the Parquet file to write")
    p.add_argument("--dictionary", action="store_true",
                   help="dictionary-encode the low-cardinality columns (Image, ParentImage, User, ...)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--sigma-dir", metavar="DIR", help="SigmaHQ checkout (default: $SIGMARROW_SIGMA_DIR "
                   "or shared/sigma beside the repository)")
    p.add_argument("--rules", nargs="+", metavar="PATH",
                   help="rules to synthesize positives for (default: the process_creation set)")
    p.add_argument("--no-positives", action="store_true", help="benign events only")
    p.add_argument("--regression-rate", type=float, default=0.0005, metavar="F")
    p.add_argument("--synth-rate", type=float, default=0.001, metavar="F")
    p.add_argument("--positives", metavar="PATH", help="write the planted positives here (Parquet)")
    args = p.parse_args(argv)

    positives = None
    start = time.perf_counter()
    if not args.no_positives:
        sigma_dir = find_sigma_dir(args.sigma_dir)
        sources = [Path(r) for r in args.rules] if args.rules else (
            process_creation_files(sigma_dir) if sigma_dir else [])
        matcher, rules = compile_with_rules(sources) if sources else (None, [])
        positives = load_positives(sigma_dir, matcher, rules)
        if not sources and sigma_dir is None:
            print("generate: no SigmaHQ checkout found: no positives planted", file=sys.stderr)
    table, planted = generate_events(args.rows, args.seed, dictionary=args.dictionary,
                                     positives=positives, regression_rate=args.regression_rate,
                                     synth_rate=args.synth_rate)
    write_parquet(table, args.out)
    if args.positives:
        pq.write_table(pa.table({"row": pa.array([r for r, _, _ in planted], pa.int64()),
                                 "rule_id": [i for _, i, _ in planted],
                                 "source": [s for _, _, s in planted]}), args.positives)
    print(f"generate: {table.num_rows:,} events, {len(planted):,} planted positives -> {args.out} "
          f"({time.perf_counter() - start:.1f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
