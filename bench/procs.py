"""What the benchmarks read from /proc: CPU time of a process, its threads or its tree, and the machine.

Used by bench/h2load.py (one gan-server process, by thread) and
bench/compare.py (TorchServe: the launcher, its Java frontend and the
Python workers the frontend starts, summed over the process tree).
Times are utime + stime in seconds; a process or thread that exits between
two readings drops out of the second, so compare readings of long-lived
servers only.
"""

from __future__ import annotations

import collections
import os
import platform
import re
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat(path: Path) -> tuple[str, list[str]]:
    """(comm, fields after comm) of a /proc stat file; fields[0] is the state."""
    text = path.read_text()
    return text[text.index("(") + 1 : text.rindex(")")], text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """utime + stime of one process (all its threads), seconds."""
    _, fields = _stat(Path(f"/proc/{pid}/stat"))
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int, main: str = "main") -> dict[str, float]:
    """CPU seconds by thread of ``pid``: the main thread as ``main``, the others by OS name (digits dropped)."""
    out: dict[str, float] = collections.defaultdict(float)
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            comm, fields = _stat(task / "stat")
        except OSError:  # the thread ended
            continue
        name = main if task.name == str(pid) else re.sub(r"\d+", "", comm)
        out[name] += (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def tree(root: int) -> dict[int, str]:
    """``root`` and every descendant now alive: pid -> comm."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    comms: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm, fields = _stat(entry / "stat")
        except OSError:
            continue
        pid = int(entry.name)
        comms[pid] = comm
        children[int(fields[1])].append(pid)
    out, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in comms:
            out[pid] = comms[pid]
            todo += children.get(pid, [])
    return out


def tree_cpu(root: int) -> dict[int, tuple[str, float]]:
    """pid -> (comm, utime + stime seconds) for ``root`` and its live descendants."""
    out = {}
    for pid, comm in tree(root).items():
        try:
            out[pid] = (comm, cpu_seconds(pid))
        except OSError:  # exited meanwhile
            pass
    return out


def cpu_name() -> str:
    try:
        return next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine() -> str:
    return f"{os.cpu_count()} cores ({cpu_name()}), Python {platform.python_version()}"


def machine_jiffies() -> tuple[int, int]:
    """(busy, total) clock ticks of all cores since boot, from /proc/stat (idle and iowait count as idle)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest time is inside user)
    return total - fields[3] - fields[4], total


def children_cpu() -> float:
    """utime + stime of this process's waited-for children so far, seconds."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
