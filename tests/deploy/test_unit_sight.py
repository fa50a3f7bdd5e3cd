"""The shipped unit's agent sees what a root agent sees: the real agent, run with exactly the
credentials and private mounts of deploy/systemd/sentinel.service as deploy/install.sh installs it
on this host (tests/support/unit.py rebuilds them with setpriv and unshare; nothing is copied out
of the unit), against processes, sockets and files of root and of another user (`nobody`).

One scenario, three agents at once, the same objects for all three:

- a root agent (the reference);
- the unit's agent: it must find every object exactly as the root agent does;
- the same unit with CAP_SYS_PTRACE removed and PrivateTmp=yes (a copy edited here): it must go
  blind on exactly the objects those settings hide, and say so in its status. This is the proof
  that the comparison fails when the unit changes so that a detector goes blind.

The objects: programs started from a temp dir (one living 2 s, caught by exec capture), a
memfd program, a program whose file is deleted, a listener and an outbound connection with their
processes, new SUID files in the real /tmp and /dev/shm, and a change to a root-only watched file.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sentinel.core.db import open_database
from sentinel.testing import wait_until
from tests.conftest import IN_CI, require_tool
from tests.support.agent import DETECTORS, DEVICE_COLLECTORS, NotifyListener
from tests.support.execburst import burst
from tests.support.unit import Sandbox, Unit, credentials

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
Key = tuple[str, str]


def _require_root() -> None:
    if os.geteuid() != 0:
        message = "running the agent with the unit's credentials needs root (setpriv, unshare -m)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


def installed_unit(root: Path, *options: str, env: dict[str, str] | None = None) -> Unit:
    """The unit and drop-ins exactly as install.sh lays them out (on this host, unless options
    or the environment say otherwise)."""
    command = ["bash", str(ROOT / "deploy/install.sh"), "--root", str(root), "--units-only", *options]
    subprocess.run(command, check=True, env=env, capture_output=True)
    return Unit.installed(root)


def blinded(unit: Unit) -> Unit:
    """A copy of the unit without CAP_SYS_PTRACE and with a private /tmp."""
    copy = Unit(unit.name, dict(unit.values), {k: list(v) for k, v in unit.lists.items()})
    for key in ("AmbientCapabilities", "CapabilityBoundingSet"):
        caps = " ".join(w for w in copy.words(key) if w != "CAP_SYS_PTRACE")
        copy.assign(key, "")
        copy.assign(key, caps)
    copy.assign("PrivateTmp", "yes")
    return copy


# -- the agents ---------------------------------------------------------------------------------


@dataclass
class Agent:
    """One `sentinel run` in its own directory outside /tmp (a private /tmp would hide it)."""

    name: str
    home: Path
    proc: subprocess.Popen[bytes]
    notify: NotifyListener
    sandbox: Sandbox | None = None

    @property
    def state(self) -> Path:
        return self.home / "state"

    def status(self) -> dict[str, Any]:
        try:
            return dict(json.loads((self.state / "status.json").read_text()))
        except (OSError, ValueError):
            return {}

    def collectors(self) -> dict[str, dict[str, Any]]:
        return {c["name"]: c for c in self.status().get("collectors", [])}

    def scrape(self) -> str:
        with urllib.request.urlopen(f"http://{self.status()['listen']}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def log(self) -> str:
        return (self.home / "agent.log").read_text(errors="replace")

    def hazards(self) -> list[dict[str, Any]]:
        path = self.state / "hazards.db"
        if not path.exists():
            return []
        conn = open_database(path, readonly=True)
        try:
            rows = conn.execute("SELECT rule, subject, evidence FROM hazards").fetchall()
        except Exception:  # the agent is still creating its schema
            return []
        finally:
            conn.close()
        return [
            {"rule": r["rule"], "subject": r["subject"], "evidence": json.loads(r["evidence"])} for r in rows
        ]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.notify.close()
        if self.sandbox is not None:
            self.sandbox.cleanup()


def agent_config(home: Path, objects: Objects) -> Path:
    rules = ROOT / "config" / "rules.d"
    text = f"""
[agent]
state_dir = "{home / "state"}"
rules_dir = "{rules}"
terminal_id = "sight-{home.name}"
branch = "0101"
status_interval = "1s"

[metrics]
listen = "127.0.0.1:0"

[hazards]
check_interval = "1s"

[collectors.processes]
interval = "20s"  # the scan: rare here, so what is found fast was found by exec capture

[collectors.listeners]
interval = "2s"

[collectors.outbound]  # only 127.0.0.2 is unexpected: the test's connections, not the machine's
interval = "2s"
allowed_cidrs = ["127.0.0.1/32", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "::/0"]

[collectors.accounts]
interval = "1s"
suid_interval = "1m"  # the shortest allowed: the planted SUID files are found within a minute
suid_dirs = ["{objects.tmp / "suid"}", "{objects.shm}"]
modules = false

[[integrity.watch]]
path = "{objects.watched}"
policy = "critical"
"""
    quiet = [c for c in (*DEVICE_COLLECTORS, *DETECTORS) if f"[collectors.{c}]" not in text]
    text += "".join(f"\n[collectors.{c}]\nenabled = false\n" for c in quiet)
    text += "\n[collectors.health]\nenabled = false\n[collectors.drill_probe]\nenabled = false\n"
    path = home / "sentinel.toml"
    path.write_text(text)
    return path


def start_agent(name: str, objects: Objects, unit: Unit | None) -> Agent:
    home = Path(tempfile.mkdtemp(prefix=f"sentinel-sight-{name}-", dir="/var/lib"))
    home.chmod(0o755)
    config = agent_config(home, objects)
    notify = NotifyListener(home)
    notify.path.chmod(0o777)  # the unit's user must be able to send READY=1
    command = [sys.executable, "-m", "sentinel", "run", "--config", str(config)]
    sandbox = None
    if unit is not None:
        creds = credentials(unit)
        os.chown(home, creds.uid, creds.gid)  # StateDirectory=: the agent's own
        config.chmod(0o644)
        sandbox = Sandbox(unit)
        command = sandbox.argv(command)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("WATCHDOG_PID", None)
    with open(home / "agent.log", "wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=home)
    return Agent(name, home, proc, notify, sandbox)


# -- the objects --------------------------------------------------------------------------------


@dataclass
class Objects:
    """What the agents must find, owned by root and by nobody, created after their baselines."""

    tmp: Path
    shm: Path
    lib: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def watched(self) -> Path:
        return self.lib / "watched"

    def spawn(self, key: str, argv: list[str], *, as_nobody: bool = False) -> None:
        prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"] if as_nobody else []
        self.procs[key] = subprocess.Popen(
            [*prefix, *argv], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )

    def pid(self, key: str) -> int:
        return self.procs[key].pid

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait(5)


def free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


PY = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
LISTEN = (
    "import socket, sys, time\n"
    "socks = [socket.create_server(('127.0.0.1', int(p))) for p in sys.argv[1:]]\n"
    "time.sleep(120)"
)
CONNECT = (
    "import socket, sys, time\nc = socket.create_connection(('127.0.0.2', int(sys.argv[1])))\ntime.sleep(120)"
)
SERVE = (
    "import socket, sys, time\n"
    "socks = [socket.create_server(('127.0.0.2', int(p))) for p in sys.argv[1:]]\n"
    "time.sleep(120)"
)
MEMFD = (
    "import os\nfd = os.memfd_create('payload')\nos.write(fd, open('/bin/sleep', 'rb').read())\n"
    "os.execv(f'/proc/self/fd/{fd}', ['payload', '120'])"
)


def plant(objects: Objects) -> None:
    """Create every object (the agents' baselines are taken)."""
    sleep = shutil.which("sleep") or "/bin/sleep"
    for who in ("root", "nobody"):
        exe = objects.tmp / f"updater-{who}"
        shutil.copy2(sleep, exe)
        objects.spawn(f"temp-{who}", [str(exe), "120"], as_nobody=who == "nobody")
        objects.spawn(f"memfd-{who}", [PY, "-c", MEMFD], as_nobody=who == "nobody")
        gone = objects.lib / "bin" / f"gone-{who}"
        shutil.copy2(sleep, gone)
        objects.spawn(f"deleted-{who}", [str(gone), "120"], as_nobody=who == "nobody")
        for top in (objects.tmp / "suid", objects.shm):
            planted = top / f"suid-{who}"
            shutil.copy2(sleep, planted)
            os.chown(planted, 0 if who == "root" else NOBODY, 0 if who == "root" else NOBODY)
            planted.chmod(0o4755)
    blink = objects.tmp / "blink"
    shutil.copy2(sleep, blink)
    objects.spawn("blink", [str(blink), "2"])  # the miner that lives 2 s
    listen_root, listen_nobody, server_a, server_b = free_ports(4)
    objects.ports = {
        "listen-root": listen_root,
        "listen-nobody": listen_nobody,
        "out-root": server_a,
        "out-nobody": server_b,
    }
    objects.spawn("listen-root", [PY, "-c", LISTEN, str(listen_root)])
    objects.spawn("listen-nobody", [PY, "-c", LISTEN, str(listen_nobody)], as_nobody=True)
    objects.spawn("servers", [PY, "-c", SERVE, str(server_a), str(server_b)])
    wait_until(lambda: _listening(server_a) and _listening(server_b), timeout=20)
    objects.spawn("out-root", [PY, "-c", CONNECT, str(server_a)])
    objects.spawn("out-nobody", [PY, "-c", CONNECT, str(server_b)], as_nobody=True)
    for who in ("root", "nobody"):  # deleted after start: the scan sees "(deleted)"
        gone = objects.lib / "bin" / f"gone-{who}"
        wait_until(lambda g=gone: any(_exe(p) == str(g) for p in _pids()), timeout=20)
        gone.unlink()
    (objects.watched / "teller.conf").write_text("limit = 50000\n")


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.2", port)) == 0


def _pids() -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()]


def _exe(pid: int) -> str:
    try:
        return str(Path(f"/proc/{pid}/exe").readlink())
    except OSError:
        return ""


# -- what an agent found ------------------------------------------------------------------------


def _evidence_for(hazards: list[dict[str, Any]], pid: int) -> tuple[str, dict[str, Any]] | None:
    for h in hazards:
        for e in h["evidence"]:
            if e.get("pid") == pid:
                return h["rule"], e
    return None


def found(agent: Agent, objects: Objects) -> dict[Key, Any]:
    """Each object's finding in a comparable form; None where the agent has none."""
    hazards = agent.hazards()
    by_subject = {(h["rule"], h["subject"]): h for h in hazards}
    view: dict[Key, Any] = {}
    for who in ("root", "nobody"):
        for kind in ("temp", "memfd", "deleted"):
            hit = _evidence_for(hazards, objects.pid(f"{kind}-{who}"))
            view[(kind, who)] = None if hit is None else (hit[0], hit[1].get("uid"), hit[1].get("exe"))
        port = objects.ports[f"listen-{who}"]
        listener = [
            h["subject"] for h in hazards if h["rule"] == "listener_new" and f":{port} " in h["subject"]
        ]
        view[("listener", who)] = listener[0] if listener else None
        out = by_subject.get(("outbound_unexpected", f"127.0.0.2:{objects.ports[f'out-{who}']}"))
        view[("outbound", who)] = (
            None if out is None else (out["evidence"][0].get("process"), out["evidence"][0].get("pid"))
        )
        for place, top in (("tmp", objects.tmp / "suid"), ("shm", objects.shm)):
            view[(f"suid-{place}", who)] = ("suid_new", str(top / f"suid-{who}")) in by_subject
    blink = by_subject.get(("process_from_temp", str(objects.tmp / "blink")))
    view[("blink", "root")] = None if blink is None else blink["evidence"][0].get("seen_by")
    view[("fim", "root")] = ("fim_critical_change", str(objects.watched / "teller.conf")) in by_subject
    return view


def _complete_view(agent: Agent, objects: Objects, timeout: float) -> dict[Key, Any]:
    """The agent's view once every object has been found; what is missing when it never is."""
    deadline = time.monotonic() + timeout
    while True:
        view = found(agent, objects)
        missing = [k for k, v in view.items() if v in (None, False)]
        if not missing:
            return view
        if time.monotonic() > deadline:
            raise AssertionError(f"the {agent.name} agent never found {missing}; it has {view}")
        time.sleep(0.5)


@pytest.fixture
def objects() -> Iterator[Objects]:
    tmp = Path(tempfile.mkdtemp(prefix="sentinel-sight-", dir="/tmp"))
    shm = Path(tempfile.mkdtemp(prefix="sentinel-sight-", dir="/dev/shm"))
    lib = Path(tempfile.mkdtemp(prefix="sentinel-sight-objects-", dir="/var/lib"))
    for d in (tmp, shm, lib):
        d.chmod(0o755)
    (tmp / "suid").mkdir(mode=0o755)
    (lib / "bin").mkdir(mode=0o755)
    (lib / "watched").mkdir(mode=0o700)  # root-only: only CAP_DAC_READ_SEARCH reads it
    (lib / "watched" / "teller.conf").write_text("limit = 5000\n")
    (lib / "watched" / "teller.conf").chmod(0o600)
    made = Objects(tmp, shm, lib)
    yield made
    made.stop()
    for d in (tmp, shm, lib):
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.timeout(420)
def test_the_shipped_unit_sees_what_root_sees_and_a_blinded_copy_does_not(
    tmp_path: Path, objects: Objects
) -> None:
    """Every object is found by the unit's agent exactly as by root; the blinded copy misses
    exactly what its two edits hide, and its status says why."""
    _require_root()
    for tool, package in (("setpriv", "util-linux"), ("unshare", "util-linux")):
        require_tool(tool, package)
    unit = installed_unit(tmp_path / "installed")
    agents = [
        start_agent("root", objects, None),
        start_agent("unit", objects, unit),
        start_agent("blind", objects, blinded(unit)),
    ]
    try:
        for agent in agents:
            try:
                agent.notify.wait_for("READY=1", timeout=60)
            except TimeoutError:
                raise AssertionError(f"{agent.name} agent not ready:\n{agent.log()}") from None
        for agent in agents:  # baselines: listeners and SUID files learnt, FIM baseline signed
            wait_until(
                lambda a=agent: all(
                    a.collectors().get(c, {}).get("runs", 0) >= 2 for c in ("listeners", "accounts")
                ),
                timeout=60,
            )
            wait_until(lambda a=agent: "fim_baseline_created" in a.log(), timeout=60)
        plant(objects)
        root, mine, blind = agents
        reference = _complete_view(root, objects, timeout=150)
        assert reference[("blink", "root")] == "exec", "the 2 s program was caught by exec capture"
        wait_until(lambda: found(mine, objects) == reference, timeout=60, interval=0.5)
        assert found(mine, objects) == reference
        _assert_sees_everything(mine)
        wait_until(
            lambda: found(blind, objects)[("fim", "root")] and found(blind, objects)[("suid-shm", "nobody")],
            timeout=60,
        )
        _assert_blind_where_expected(found(blind, objects), reference, blind)
    except BaseException:
        for agent in agents:
            sys.stderr.write(f"--- {agent.name} agent log ---\n{agent.log()[-4000:]}\n")
        raise
    finally:
        for agent in agents:
            agent.stop()
            shutil.rmtree(agent.home, ignore_errors=True)


def _assert_sees_everything(agent: Agent) -> None:
    """Every detector in use is up, and process starts come from the proc connector."""
    rows = agent.collectors()
    for name in ("processes", "listeners", "outbound", "accounts", "integrity"):
        assert rows[name]["up"], (name, rows[name]["reason"])
    scrape = agent.scrape()
    assert 'sentinel_exec_capture_mode{mode="connector"} 1.0' in scrape
    for name in ("processes", "listeners", "outbound", "accounts", "integrity"):
        assert f'sentinel_detector_up{{detector="{name}"}} 1.0' in scrape


def _assert_blind_where_expected(view: dict[Key, Any], reference: dict[Key, Any], agent: Agent) -> None:
    """Without CAP_SYS_PTRACE: no program of another user is judged, no socket has an owner;
    with a private /tmp: the SUID files planted in the host's /tmp are not seen. The rest is."""
    for who in ("root", "nobody"):
        for kind in ("temp", "memfd", "deleted"):
            assert view[(kind, who)] is None, (kind, who, view[(kind, who)])
        assert view[("listener", who)] is not None and view[("listener", who)].endswith("(?)")
        assert view[("outbound", who)] == ("?", 0)
        assert view[("suid-tmp", who)] is False
        assert view[("suid-shm", who)] is True  # PrivateDevices/PrivateTmp leave the host's /dev/shm
    assert view[("blink", "root")] is None
    assert view[("fim", "root")] is True
    assert view != reference
    rows = agent.collectors()
    for name, needs in (
        ("processes", "CAP_SYS_PTRACE"),
        ("listeners", "CAP_SYS_PTRACE"),
        ("outbound", "CAP_SYS_PTRACE"),
        ("accounts", "PrivateTmp=yes"),
    ):
        assert not rows[name]["up"] and needs in rows[name]["reason"], (name, rows[name])
    status = subprocess.run(
        [sys.executable, "-m", "sentinel", "status", "--config", str(agent.home / "sentinel.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "blind: cannot read other users' /proc/<pid>/exe: needs CAP_SYS_PTRACE" in status.stdout, (
        status.stdout
    )
    blind = {n: r["reason"] for n, r in rows.items() if r["enabled"] and not r["sees"]}
    assert _blind_in_cli(status.stdout) == blind, status.stdout  # every blind one named, and why
    scrape = agent.scrape()
    for name in ("processes", "listeners", "outbound", "accounts"):
        assert f'sentinel_detector_up{{detector="{name}"}} 0.0' in scrape, name


def _blind_in_cli(text: str) -> dict[str, str]:
    """`sentinel status`: each collector row, and the `blind: why` line under a blind one."""
    blind: dict[str, str] = {}
    row = ""
    for line in text.splitlines():
        words = line.split()
        if words and words[0] == "blind:" and row:
            blind[row] = line.split("blind: ", 1)[1]
        elif line.startswith("  ") and words:
            row = words[0]
    return blind


@pytest.mark.timeout(300)
def test_exec_capture_with_the_units_credentials_sees_1000_short_root_programs(tmp_path: Path) -> None:
    """The processes detector, run with exactly the unit's credentials and mounts, subscribes to
    the proc connector (no capability beyond the unit's) and sees each of 1,000 root programs
    of 10 ms started from /tmp; most are judged exec_from_temp before they exit."""
    _require_root()
    for tool, package in (("setpriv", "util-linux"), ("unshare", "util-linux")):
        require_tool(tool, package)
    sandbox = Sandbox(installed_unit(tmp_path / "installed"))
    temp = Path(tempfile.mkdtemp(prefix="sentinel-burst-", dir="/tmp"))
    temp.chmod(0o755)
    watcher = subprocess.Popen(
        sandbox.argv([sys.executable, "-m", "tests.support.execburst", str(temp)]),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert watcher.stdin is not None and watcher.stdout is not None
        ready = watcher.stdout.readline().split(maxsplit=2)
        assert ready[:2] == ["ready", "connector"], ready
        pids = burst(temp, 1000)
        watcher.stdin.write(" ".join(map(str, pids)) + "\n")
        watcher.stdin.flush()
        counts = json.loads(watcher.stdout.readline())
    finally:
        if watcher.poll() is None:
            watcher.kill()
        watcher.wait(10)
        sandbox.cleanup()
        shutil.rmtree(temp, ignore_errors=True)
    assert counts["burst"] == counts["seen"] == 1000, counts
    assert counts["judged"] >= 500, counts


# -- the unit's other promises, read from the file ----------------------------------------------


def _syscalls(group_or_name: str, analyze: str) -> set[str]:
    if not group_or_name.startswith("@"):
        return {group_or_name}
    out = subprocess.run(
        [analyze, "syscall-filter", group_or_name], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    names: set[str] = set()
    for line in out.stdout.splitlines():
        word = line.strip()
        if not word or word.startswith(("#", group_or_name)):
            continue
        names |= _syscalls(word, analyze) if word.startswith("@") else {word}
    return names


def allowed_syscalls(unit: Unit, analyze: str) -> set[str]:
    """SystemCallFilter= as systemd.exec(5) applies it: the first line sets the mode (an allow
    list here), later lines add (plain) or remove (`~`) in order."""
    lines = unit.lists["SystemCallFilter"]
    assert not lines[0].startswith("~"), "the unit starts from an allow list"
    allowed: set[str] = set()
    for line in lines:
        names = set().union(*(_syscalls(w, analyze) for w in line.lstrip("~").split()))
        allowed = allowed - names if line.startswith("~") else allowed | names
    return allowed


def test_ptrace_reads_no_memory_and_the_scanner_may_lower_its_priority(tmp_path: Path) -> None:
    """With CAP_SYS_PTRACE granted, every way to another process's memory is filtered out;
    setpriority stays allowed so `[integrity.scan] nice` works."""
    analyze = require_tool("systemd-analyze", "systemd")
    allowed = allowed_syscalls(installed_unit(tmp_path), analyze)
    assert not {"ptrace", "process_vm_readv", "process_vm_writev", "pidfd_getfd"} & allowed
    assert "setpriority" in allowed
    assert {"socket", "bind", "recvfrom", "readlinkat"} <= allowed  # what the detectors use


@pytest.mark.parametrize(
    ("release", "option", "granted"),
    [("6.1.0-18-amd64", "auto", True), ("5.14.0-427.el9", "auto", True), ("6.6.0", "auto", False),
     ("6.18.4", "auto", False), ("6.8.0", "yes", True), ("5.10.0", "no", False)],
)  # fmt: skip
def test_cap_net_admin_only_where_the_kernel_wants_it(
    tmp_path: Path, release: str, option: str, granted: bool
) -> None:
    """install.sh grants CAP_NET_ADMIN (exec capture) on kernels before 6.6, or when told to."""
    env = {**os.environ, "SENTINEL_KERNEL_RELEASE": release}
    unit = installed_unit(tmp_path, "--net-admin", option, env=env)
    caps = unit.capabilities("CapabilityBoundingSet") or frozenset()
    assert ("net_admin" in caps) is granted
    assert {"dac_read_search", "sys_ptrace"} <= caps


def test_every_privilege_is_explained_in_the_deployment_guide(tmp_path: Path) -> None:
    """Each capability the unit can grant (drop-in included) has its row in docs/deployment.md."""
    unit = installed_unit(tmp_path, "--net-admin", "yes")
    guide = (ROOT / "docs" / "deployment.md").read_text()
    for cap in sorted(unit.capabilities("AmbientCapabilities") or ()):
        assert f"| `CAP_{cap.upper()}` |" in guide, cap
    for group in unit.words("SupplementaryGroups"):
        assert f"`{group}`" in guide, group
    assert unit.capabilities("AmbientCapabilities") == unit.capabilities("CapabilityBoundingSet")
