"""The services collector: units through a real (stand-in) systemctl, processes through /proc."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sentinel.config.loader import ConfigError, load
from sentinel.core.settings import Duration
from sentinel.sources.host.services import ProcessCheck, ServicesCollector, ServicesConfig, parse_show
from tests.sources.conftest import value, values
from tests.support.agent import write_config

FAKE_SYSTEMCTL = """#!/bin/sh
# a stand-in for `systemctl show -p Id -p ActiveState -- UNIT...`: one block per unit, in order
while [ "$1" != "--" ]; do shift; done; shift
first=1
for unit in "$@"; do
  [ $first = 1 ] || echo
  first=0
  case "$unit" in
    teller-app.service) state=active ;;
    cups.service) state=failed ;;
    *) state=inactive ;;
  esac
  echo "ActiveState=$state"
  echo "Id=$unit"
done
"""


def script(tmp: Path, body: str) -> str:
    path = tmp / "systemctl"
    path.write_text(body)
    path.chmod(0o755)
    return str(path)


def units(tmp: Path, body: str = FAKE_SYSTEMCTL, timeout: float = 5) -> ServicesCollector:
    config = ServicesConfig(
        units=("teller-app.service", "cups.service", "gone.service"),
        systemctl=script(tmp, body),
        timeout=Duration(timeout),
    )
    return ServicesCollector(config)


def test_unit_states(tmp: Path) -> None:
    """active is up; failed and inactive (or not found) are down."""
    items = list(units(tmp).collect())
    up = {dict(k)["service"]: v for k, v in values(items, "sentinel_service_up").items()}
    assert up == {"teller-app.service": 1, "cups.service": 0, "gone.service": 0}
    assert value(items, "sentinel_service_check_failures_total") == 0


def test_hung_systemctl_is_cut_off_and_counted(tmp: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """systemctl hangs: the run ends at the timeout, no unit series, one failure, one log line."""
    services = units(tmp, "#!/bin/sh\nexec sleep 30\n", timeout=0.3)
    items = list(services.collect())
    items = list(services.collect())
    assert values(items, "sentinel_service_up") == {}
    assert value(items, "sentinel_service_check_failures_total") == 2
    assert capsys.readouterr().out.count("unit_check_failed") == 1


def test_no_systemd_is_a_counted_failure_not_a_dead_service(tmp: Path) -> None:
    """systemctl exits 1 (no systemd): no series rather than every unit reported down."""
    items = list(
        units(tmp, "#!/bin/sh\necho 'System has not been booted with systemd' >&2\nexit 1\n").collect()
    )
    assert values(items, "sentinel_service_up") == {}
    assert value(items, "sentinel_service_check_failures_total") == 1


def test_missing_systemctl_binary(tmp: Path) -> None:
    """A systemctl path that does not exist is a counted failure too."""
    config = ServicesConfig(units=("a.service",), systemctl=str(tmp / "nope"))
    items = list(ServicesCollector(config).collect())
    assert value(items, "sentinel_service_check_failures_total") == 1


def test_parse_show_checks_the_block_count() -> None:
    """A truncated answer is rejected instead of shifting states onto the wrong units."""
    assert parse_show("Id=a\nActiveState=active\n\nId=b\nActiveState=failed\n", 2) == ["active", "failed"]
    with pytest.raises(ValueError, match="expected 3"):
        parse_show("Id=a\nActiveState=active\n", 3)


def test_processes_by_name_and_command_line(machine: Callable[[str], Path]) -> None:
    """teller-app found by comm, the kiosk by a cmdline regex, a missing one is down."""
    config = ServicesConfig(
        processes=(
            ProcessCheck(name="teller", comm="teller-app"),
            ProcessCheck(name="kiosk", cmdline=r"com\.bank\.kiosk\.Main"),
            ProcessCheck(name="printer", comm="cupsd"),
            ProcessCheck(name="two_tellers", comm="teller-app", min_count=2),
        )
    )
    items = list(ServicesCollector(config, proc_root=machine("terminal") / "proc").collect())
    up = {dict(k)["service"]: v for k, v in values(items, "sentinel_service_up").items()}
    assert up == {"teller": 1, "kiosk": 1, "printer": 0, "two_tellers": 0}
    assert value(items, "sentinel_service_processes", service="teller") == 1


def test_config_needs_exactly_one_way_to_find_a_process(tmp: Path) -> None:
    """comm and cmdline together (or neither) is a config error naming the key."""
    path = write_config(
        tmp,
        extra='\n[[collectors.services.processes]]\nname = "x"\ncomm = "a"\ncmdline = "b"\n',
    )
    with pytest.raises(ConfigError, match=r"collectors\.services\.processes\[0\]: needs exactly one"):
        load(path)


def test_live_machine() -> None:
    """On this machine: this test's own process is found; systemctl answers or is counted."""
    config = ServicesConfig(
        units=("sentinel-test-does-not-exist.service",),
        processes=(ProcessCheck(name="me", cmdline=rf"{os.path.basename(sys.executable)}.*pytest"),),
    )
    items = list(ServicesCollector(config).collect())
    assert value(items, "sentinel_service_up", service="me", kind="process") == 1
    unit = value(items, "sentinel_service_up", service="sentinel-test-does-not-exist.service", kind="unit")
    failures = value(items, "sentinel_service_check_failures_total")
    assert (unit == 0 and failures == 0) or (unit is None and failures == 1)
