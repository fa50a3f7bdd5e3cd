"""Detectors that cannot see say so: `sentinel_detector_up` 0, a reason, one log line per change.

The privileges are injected (what the unit grants is measured for real in tests/deploy); the
mount table facts are parsed from mountinfo text shaped like systemd's.
"""

from __future__ import annotations

from pathlib import Path

import structlog

from sentinel.core.model import Sample
from sentinel.sources import sight
from sentinel.sources.detectors.accounts import AccountsCollector, AccountsConfig
from sentinel.sources.detectors.auth import AuthCollector, AuthConfig
from sentinel.sources.detectors.base import DetectorStats
from sentinel.sources.detectors.listeners import ListenersCollector, ListenersConfig
from sentinel.sources.detectors.outbound import OutboundCollector, OutboundConfig
from sentinel.sources.detectors.usb import UsbCollector, UsbConfig
from sentinel.testing import FakeClock

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
40 22 8:1 /tmp/systemd-private-3f2a-sentinel.service-Xy12/tmp /tmp rw,relatime - ext4 /dev/sda1 rw
41 22 8:1 /var/tmp/systemd-private-3f2a-sentinel.service-Ab34/tmp /var/tmp rw,relatime - ext4 /dev/sda1 rw
42 22 0:30 / /dev/shm rw,nosuid,nodev - tmpfs tmpfs rw
43 25 0:40 / /proc rw,nosuid,nodev,noexec - proc proc rw,hidepid=invisible,subset=pid
44 22 0:41 / /srv/with\\040space rw - tmpfs tmpfs rw
"""


def up(samples: object) -> float:
    for s in samples:  # type: ignore[attr-defined]
        if isinstance(s, Sample) and s.name == "sentinel_detector_up":
            return s.value
    raise AssertionError("no sentinel_detector_up")


def test_mountinfo_tells_private_tmp_and_hidden_proc(tmp_path: Path) -> None:
    """PrivateTmp's bind mounts are private copies; /dev/shm is the host's; hidepid/subset named."""
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    table = sight.mounts(tmp_path / "mountinfo")
    assert sight.private_copies(["/tmp", "/var/tmp/x", "/dev/shm", "/usr/bin"], table) == [
        "/tmp",
        "/var/tmp/x",
    ]
    assert sight.proc_hides(Path("/proc"), table) == "hidepid=invisible, subset=pid"
    assert sight.mount_of("/srv/with space/a", table) is not None
    assert sight.mount_of("/srv/with space/a", table).point == "/srv/with space"  # type: ignore[union-attr]


def test_capabilities_come_from_capeff(tmp_path: Path) -> None:
    """CapEff 0x80004 is CAP_DAC_READ_SEARCH and CAP_SYS_PTRACE, not CAP_NET_ADMIN."""
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapInh:\t0000000000080004\nCapEff:\t0000000000080004\n")
    needed = [sight.CAP_SYS_PTRACE, sight.CAP_DAC_READ_SEARCH, sight.CAP_NET_ADMIN]
    assert sight.missing_capabilities(needed, status) == ["CAP_NET_ADMIN"]


def test_blindness_is_logged_once_and_its_end_too() -> None:
    """Every poll repeats the state; the log has one line when it goes blind and one when it sees."""
    stats = DetectorStats("x")
    with structlog.testing.capture_logs() as logs:
        stats.set_up(True)
        for _ in range(3):
            stats.set_up(False, "needs CAP_SYS_PTRACE")
        stats.set_up(True)
        stats.set_up(True)
    assert [(e["event"], e.get("reason")) for e in logs] == [
        ("detector_blind", "needs CAP_SYS_PTRACE"),
        ("detector_sight_restored", None),
    ]


def test_socket_detectors_without_ptrace_say_whose_sockets_they_cannot_attribute(tmp_path: Path) -> None:
    """Listeners and outbound: down while another user's socket cannot be traced to its process."""
    (tmp_path / "net").mkdir()
    blind = lambda: ["CAP_SYS_PTRACE"]  # noqa: E731
    listeners = ListenersCollector(
        ListenersConfig(), state_dir=tmp_path / "s", proc_root=tmp_path, missing=blind
    )
    outbound = OutboundCollector(OutboundConfig(), proc_root=tmp_path, missing=blind)
    for detector in (listeners, outbound):
        assert up(detector.collect()) == 0
        assert "CAP_SYS_PTRACE" in detector.sight().reason
    sighted = ListenersCollector(
        ListenersConfig(), state_dir=tmp_path / "t", proc_root=tmp_path, missing=list
    )
    assert up(sighted.collect()) == 1 and sighted.sight().reason == ""


def test_socket_detectors_without_proc_net(tmp_path: Path) -> None:
    """ProcSubset=pid leaves no /proc/net: down, and the reason says where it looked."""
    outbound = OutboundCollector(OutboundConfig(), proc_root=tmp_path, missing=list)
    assert up(outbound.collect()) == 0
    assert f"{tmp_path}/net is missing" in outbound.sight().reason


def test_accounts_in_a_private_tmp_is_down(tmp_path: Path) -> None:
    """SUID dirs that are this service's private copies: down, naming them."""
    c = AccountsCollector(
        AccountsConfig(suid_dirs=("/tmp", "/usr/bin")),
        state_dir=tmp_path,
        missing=list,
        private=lambda dirs: [d for d in dirs if d == "/tmp"],
    )
    assert up(c.collect()) == 0
    assert c.sight().reason.startswith("/tmp: this service's private copies (PrivateTmp=yes)")


def test_accounts_without_dac_read_search_is_down(tmp_path: Path) -> None:
    """sudoers, crontabs and others' authorized_keys unreadable: down, naming the capability."""
    c = AccountsCollector(
        AccountsConfig(suid_dirs=()),
        state_dir=tmp_path,
        missing=lambda: ["CAP_DAC_READ_SEARCH"],
        private=list,
    )
    assert up(c.collect()) == 0 and "CAP_DAC_READ_SEARCH" in c.sight().reason


def test_auth_without_any_log_says_which_are_missing(tmp_path: Path) -> None:
    """No journal and no readable auth log: down, each file and why, and a last-run time."""
    clock = FakeClock()
    files = (tmp_path / "auth.log", tmp_path / "secure")
    c = AuthCollector(
        AuthConfig(source="file", files=files, drill_log=False), state_dir=tmp_path, clock=clock
    )
    c.poll_files(lambda _items: True)
    s = c.sight()
    assert not s.up and s.last_run_at == clock.time()
    assert s.reason == f"no auth log can be read: {files[0]} missing, {files[1]} missing"
    files[0].write_text("")
    c.poll_files(lambda _items: True)
    assert c.sight().up


def test_usb_without_a_bus_is_down_with_its_last_scan(tmp_path: Path) -> None:
    """No /sys/bus/usb (a VM, a container): down, the path named; the scan time is its last run."""
    clock = FakeClock()
    c = UsbCollector(UsbConfig(), state_dir=tmp_path, sys_root=tmp_path / "sys", clock=clock)
    c.scan()
    s = c.sight()
    assert not s.up and s.last_run_at == clock.time()
    assert s.reason == f"no USB bus to watch: {tmp_path / 'sys/bus/usb/devices'} is missing"
