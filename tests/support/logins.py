"""Real OS logins that exist for one test only, and commands run as them.

`run_as_logins(script)` starts this module under `unshare --mount` (a private mount namespace):
it bind-mounts a copy of /etc over /etc, so `useradd` and `groupadd` create real accounts —
the kernel, NSS (`pwd`, `grp`), `setpriv` and `su` all see them — that no other process on
the machine ever sees, and that vanish with the namespace. Then it runs each step's `sentinel`
command as a session of that login would run it:

- the audit login uid (/proc/self/loginuid) is set to the login's uid (root may, with
  CAP_AUDIT_CONTROL), as pam_loginuid does at login; then
- `setpriv --reuid/--regid --init-groups` becomes the login (the plain case), or
- `su root` becomes root, as an operator's `sudo`/`su` would: the loginuid is kept.

The script (JSON on stdin) names the logins, the groups, the directories to share with them
(group-owned by `share_group`, setgid, group-writable) and the steps; the result (JSON on
stdout) is one {returncode, stdout, stderr} per step, or {skipped: reason}.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
_SET_LOGINUID = 'echo "$0" > /proc/self/loginuid && exec "$@"'
TOOLS = ("unshare", "useradd", "groupadd", "setpriv", "su", "mount")


def run_as_logins(script: dict[str, Any], *, timeout: float = 240) -> list[dict[str, Any]]:
    """Run `script` (see the module docstring) in a private mount namespace; skip the test where
    that cannot be done here (not root, or util-linux / passwd tools missing)."""
    if os.geteuid() != 0:
        pytest.skip("real OS logins need root (useradd, setpriv, a mount namespace)")
    missing = [t for t in TOOLS if shutil.which(t) is None]
    if missing:
        pytest.skip(f"missing {', '.join(missing)} (Debian packages util-linux, passwd)")
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", sys.executable, "-m", "tests.support.logins"],
        input=json.dumps(script),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"the login session runner failed ({done.returncode}): {done.stderr}")
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results


# -- inside the namespace ------------------------------------------------------------------------


def _private_etc() -> Path:
    copy = Path(tempfile.mkdtemp(prefix="sentinel-etc-"))
    subprocess.run(["cp", "-a", "/etc", str(copy / "etc")], check=True)
    subprocess.run(["mount", "--bind", str(copy / "etc"), "/etc"], check=True)
    return copy


def _interpreter(uid: int, gid: int) -> tuple[list[str], dict[str, str]]:
    """A Python the login can run, with this checkout importable (a venv under a home that
    is closed to others is not: then the system Python of the same version, on our paths)."""
    env = {k: v for k, v in os.environ.items() if k not in ("SUDO_USER", "SUDO_UID", "PYTHONHOME")}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    )
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"]
    for python in candidates:
        probe = subprocess.run(
            [
                "setpriv",
                f"--reuid={uid}",
                f"--regid={gid}",
                "--clear-groups",
                python,
                "-c",
                "import sentinel",
            ],
            env=env,
            capture_output=True,
            timeout=60,
            cwd="/",
        )
        if probe.returncode == 0:
            return [python], env
    raise SystemExit(f"no Python that uid {uid} can run with sentinel importable: {candidates}")


def _loginuid_settable() -> bool:
    probe = subprocess.run(["sh", "-c", _SET_LOGINUID, "4242", "true"], capture_output=True, timeout=10)
    return probe.returncode == 0


def _step(step: dict[str, Any], python: list[str], env: dict[str, str], settable: bool) -> dict[str, Any]:
    login = pwd.getpwnam(step["login"])
    sentinel = [*python, "-m", "sentinel", *step["argv"]]
    if step.get("via") == "su":
        if not settable:
            return {"skipped": "cannot set a loginuid here, so su would hide who it was"}
        command = ["su", "-s", "/bin/sh", "-c", " ".join(_quote(a) for a in sentinel), "root"]
    else:
        command = [
            "setpriv",
            f"--reuid={login.pw_uid}",
            f"--regid={login.pw_gid}",
            "--init-groups",
            *sentinel,
        ]
    if settable:
        command = ["sh", "-c", _SET_LOGINUID, str(login.pw_uid), *command]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120, cwd="/")
    return {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


def main() -> None:
    """The namespace side: accounts, shared directories, then the steps."""
    script = json.loads(sys.stdin.read())
    copy = _private_etc()
    try:
        for name in script["logins"]:
            subprocess.run(
                ["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", "-U", name], check=True
            )
        for group, members in script.get("groups", {}).items():
            subprocess.run(["groupadd", group], check=True)
            for member in members:
                subprocess.run(["usermod", "-a", "-G", group, member], check=True)
        share_group = script.get("share_group")
        for directory in script.get("share", []):
            for path in [Path(directory), *Path(directory).rglob("*")]:
                shutil.chown(path, group=share_group)
                path.chmod(0o2770 if path.is_dir() else 0o660)
        first = pwd.getpwnam(script["logins"][0])
        python, env = _interpreter(first.pw_uid, first.pw_gid)
        settable = _loginuid_settable()
        results = [_step(step, python, env, settable) for step in script["steps"]]
    finally:
        subprocess.run(["umount", "/etc"], check=False)
        shutil.rmtree(copy, ignore_errors=True)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
