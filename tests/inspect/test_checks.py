"""Each shipped posture check against fixture files, passing and failing."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from sentinel.core.model import Category, Severity
from sentinel.inspect.checks import Check, Evaluator, value_matches
from sentinel.inspect.runner import load_checks

SHIPPED = Path(__file__).resolve().parents[2] / "config" / "checks.d" / "posture.toml"


class FakeCommands:
    """Answers commands from a table; anything missing is 'not installed'."""

    def __init__(self, answers: Mapping[tuple[str, ...], tuple[int, str]]) -> None:
        self.answers = answers

    def __call__(self, argv: Sequence[str], timeout: float) -> tuple[int, str]:
        key = tuple(argv)
        if key not in self.answers:
            raise FileNotFoundError(argv[0])
        return self.answers[key]


@pytest.fixture(scope="module")
def checks() -> dict[str, Check]:
    loaded, errors = load_checks([SHIPPED])
    assert errors == []
    return {c.id: c for c in loaded}


def make_root(tmp: Path, files: Mapping[str, str], modes: Mapping[str, int] | None = None) -> Path:
    root = tmp / "root"
    for name, text in files.items():
        path = root / name.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        if modes and name in modes:
            path.chmod(modes[name])
    root.mkdir(exist_ok=True)
    return root


def outcome(checks: dict[str, Check], check_id: str, root: Path, commands: FakeCommands | None = None) -> str:
    result = Evaluator(root=root, run=commands or FakeCommands({})).evaluate(checks[check_id])
    return result.outcome


SSHD_DEFAULT = "Include /etc/ssh/sshd_config.d/*.conf\n#PermitRootLogin prohibit-password\n"

CASES = [
    # (check, files, expected)
    ("ssh_root_login", {"/etc/ssh/sshd_config": SSHD_DEFAULT + "PermitRootLogin no\n"}, "pass"),
    ("ssh_root_login", {"/etc/ssh/sshd_config": SSHD_DEFAULT}, "fail"),  # default prohibit-password
    (
        "ssh_root_login",
        {
            "/etc/ssh/sshd_config": "PermitRootLogin no\n",
            "/etc/ssh/sshd_config.d/50-cloud.conf": "PermitRootLogin yes\n",
        },
        "fail",
    ),  # first wins
    ("ssh_root_login", {}, "skip"),  # no sshd installed
    ("ssh_password_auth", {"/etc/ssh/sshd_config": "PasswordAuthentication no\n"}, "pass"),
    ("ssh_password_auth", {"/etc/ssh/sshd_config": "PasswordAuthentication yes\n"}, "fail"),
    ("usb_storage_disabled", {"/etc/modprobe.d/usb.conf": "install usb-storage /bin/false\n"}, "pass"),
    ("usb_storage_disabled", {"/etc/modprobe.d/usb.conf": "blacklist usb_storage\n"}, "pass"),
    ("usb_storage_disabled", {"/etc/modprobe.d/usb.conf": "# blacklist usb-storage\n"}, "fail"),
    (
        "no_empty_passwords",
        {"/etc/shadow": "root:$y$j9T$abc:19000:0:99999:7:::\nsvc:!:19000::::::\n"},
        "pass",
    ),
    ("no_empty_passwords", {"/etc/shadow": "root:$y$abc:19000::::::\nteller::19000::::::\n"}, "fail"),
    (
        "only_root_has_uid_0",
        {"/etc/passwd": "root:x:0:0:root:/root:/bin/bash\nbin:x:1:1::/:/sbin/nologin\n"},
        "pass",
    ),
    (
        "only_root_has_uid_0",
        {"/etc/passwd": "root:x:0:0::/root:/bin/sh\ntoor:x:0:0::/root:/bin/sh\n"},
        "fail",
    ),
    ("screen_lock", {"/etc/profile.d/tmout.sh": "readonly TMOUT=600\nexport TMOUT\n"}, "pass"),
    (
        "screen_lock",
        {"/etc/dconf/db/local.d/00-lock": "[org/gnome/desktop/screensaver]\nlock-enabled=true\n"},
        "pass",
    ),
    ("screen_lock", {"/etc/profile": "export PATH\n"}, "fail"),
]


@pytest.mark.parametrize(
    ("check_id", "files", "expected"), CASES, ids=[f"{c[0]}-{i}-{c[2]}" for i, c in enumerate(CASES)]
)
def test_file_checks(
    checks: dict[str, Check], tmp: Path, check_id: str, files: dict[str, str], expected: str
) -> None:
    """The check reads the fixture files and gives the expected outcome."""
    assert outcome(checks, check_id, make_root(tmp, files)) == expected


def test_empty_password_detail_never_shows_the_hash(checks: dict[str, Check], tmp: Path) -> None:
    """A failing shadow check names the account, not its password field."""
    root = make_root(tmp, {"/etc/shadow": "root:$6$secret$hash:1::::::\nteller::1::::::\n"})
    result = Evaluator(root=root, run=FakeCommands({})).evaluate(checks["no_empty_passwords"])
    assert "teller" in result.detail and "$6$" not in result.detail


def test_world_writable_and_suid_files(checks: dict[str, Check], tmp: Path) -> None:
    """A world-writable file in /etc and an unknown setuid binary fail; allowed ones pass."""
    root = make_root(
        tmp, {"/etc/ok.conf": "", "/usr/bin/passwd": "", "/usr/bin/ls": ""}, {"/usr/bin/passwd": 0o4755}
    )
    assert outcome(checks, "no_world_writable_system_files", root) == "pass"
    assert outcome(checks, "no_unexpected_suid", root) == "pass"
    (root / "etc" / "ok.conf").chmod(0o666)
    (root / "usr" / "bin" / "ls").chmod(0o4755)
    assert outcome(checks, "no_world_writable_system_files", root) == "fail"
    result = Evaluator(root=root, run=FakeCommands({})).evaluate(checks["no_unexpected_suid"])
    assert result.outcome == "fail" and result.detail == "1 file(s): /usr/bin/ls"


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        (
            {
                ("nft", "list", "ruleset"): (
                    0,
                    "table inet filter {\n chain input {\n type filter hook input priority 0;\n",
                )
            },
            "pass",
        ),
        ({("iptables", "-S", "INPUT"): (0, "-P INPUT DROP\n-A INPUT -i lo -j ACCEPT\n")}, "pass"),
        ({("iptables", "-S", "INPUT"): (0, "-P INPUT ACCEPT\n")}, "fail"),
        ({("ufw", "status"): (0, "Status: inactive\n")}, "fail"),
        ({}, "fail"),  # no firewall tool at all
    ],
)
def test_firewall(
    checks: dict[str, Check], tmp: Path, answers: dict[tuple[str, ...], tuple[int, str]], expected: str
) -> None:
    """nftables with an input hook, iptables with a DROP policy or ufw active pass."""
    assert outcome(checks, "firewall_active", make_root(tmp, {}), FakeCommands(answers)) == expected


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({("timedatectl", "show", "-p", "NTPSynchronized", "--value"): (0, "yes\n")}, "pass"),
        (
            {
                ("timedatectl", "show", "-p", "NTPSynchronized", "--value"): (0, "no\n"),
                ("chronyc", "tracking"): (0, "Reference ID : 0A\nLeap status     : Normal\n"),
            },
            "pass",
        ),
        ({("timedatectl", "show", "-p", "NTPSynchronized", "--value"): (0, "no\n")}, "fail"),
    ],
)
def test_time_sync(
    checks: dict[str, Check], tmp: Path, answers: dict[tuple[str, ...], tuple[int, str]], expected: str
) -> None:
    """timedatectl or chrony reporting synchronised passes."""
    assert outcome(checks, "time_synchronised", make_root(tmp, {}), FakeCommands(answers)) == expected


@pytest.mark.parametrize(("score", "expected"), [("2.1", "pass"), ("2.5", "pass"), ("4.0", "fail")])
def test_unit_hardening(checks: dict[str, Check], tmp: Path, score: str, expected: str) -> None:
    """The unit's systemd exposure score must be 2.5 or lower."""
    argv = ("systemd-analyze", "security", "--offline=true", "/etc/systemd/system/sentinel.service")
    answers = {argv: (0, f"NAME DESCRIPTION\n→ Overall exposure level for sentinel.service: {score} OK 🙂\n")}
    assert outcome(checks, "agent_unit_hardened", make_root(tmp, {}), FakeCommands(answers)) == expected


def test_a_hanging_command_is_an_error_not_a_hang(tmp: Path) -> None:
    """A command over its timeout is reported as error."""

    def slow(argv: Sequence[str], timeout: float) -> tuple[int, str]:
        raise subprocess.TimeoutExpired(list(argv), timeout)

    check = Check(
        "c", "c", Category.STABILITY, Severity.INFO, "fix", {"type": "command", "argv": ["x"], "expect": "y"}
    )
    assert Evaluator(root=tmp, run=slow).evaluate(check).outcome == "error"


def test_real_commands_run_without_a_shell(tmp: Path) -> None:
    """The real runner executes argv (shell metacharacters are plain arguments)."""
    check_file = tmp / "c.toml"
    check_file.write_text(
        '[[checks]]\nid = "echo"\ntitle = "t"\ncategory = "stability"\nseverity = "info"\n'
        'remediation = "r"\ntype = "command"\nargv = ["echo", "a;b $(id)"]\nexpect = "a;b $(id)"\n'
    )
    (check,), errors = load_checks([check_file])
    assert errors == []
    assert Evaluator(root=tmp).evaluate(check).outcome == "pass"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('type = "lines"\npaths = ["/x"]\npattern = "("', "checks[0].pattern: invalid regular expression"),
        ('type = "setting"\npaths = ["/x"]\nkey = "k"', "checks[0].expect: required key is missing"),
        ('type = "magic"', "checks[0].type: expected one of command, files, lines, setting"),
        ('type = "files"\npaths = ["/"]\nmode_any = "2"\nbogus = 1', "checks[0].bogus: unknown key"),
    ],
)
def test_bad_check_files_are_reported_by_key(tmp: Path, text: str, message: str) -> None:
    """A broken check is one clear line naming file and key; the others still load."""
    path = tmp / "bad.toml"
    path.write_text(
        '[[checks]]\nid = "x"\ntitle = "t"\ncategory = "stability"\nseverity = "info"\n'
        f'remediation = "r"\n{text}\n'
    )
    checks, errors = load_checks([path])
    assert checks == []
    assert any(e.startswith(f"{path}: ") and message in e for e in errors), errors


def test_numeric_matchers() -> None:
    """value_matches understands <=, >, == on numbers, and rule matchers otherwise."""
    assert value_matches("<= 2.5", "2.5") and not value_matches("<= 2.5", "2.6")
    assert value_matches("> 0", "3") and not value_matches("> 0", "abc")
    assert value_matches("~(no|off)", "off") and value_matches("!yes", "no")
