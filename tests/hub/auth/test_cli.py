"""`sentinel hub user add|passwd|role|disable|enable|unlock|list`."""

from __future__ import annotations

import argparse
import io
import json
from typing import Any

import pytest
from argon2 import PasswordHasher
from argon2.profiles import CHEAPEST

from sentinel.hub.auth import cli
from sentinel.hub.auth.users import Users

CHEAP = PasswordHasher.from_parameters(CHEAPEST)


def _run(hub: Any, *argv: str, stdin: str = "") -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="sentinel hub")
    cli.register(parser.add_subparsers(dest="command"))
    out, err = io.StringIO(), io.StringIO()
    code = cli.run(
        parser.parse_args(list(argv)), hub, stdin=io.StringIO(stdin), stdout=out, stderr=err, hasher=CHEAP
    )
    return code, out.getvalue(), err.getvalue()


def test_add_with_roles_then_log_in(hub: Any) -> None:
    """user add NAME --role officer --unit east --password-stdin: the user exists with that role."""
    code, out, _ = _run(
        hub,
        "user",
        "add",
        "olga",
        "--display",
        "Olga",
        "--role",
        "officer",
        "--unit",
        "east",
        "--password-stdin",
        stdin="correct horse battery staple\n",
    )
    assert code == 0 and "officer@east" in out
    users = Users(hub.db, hasher=CHEAP)
    assert users.authenticate("olga", "correct horse battery staple", now=hub.clock.time()).user is not None


def test_a_generated_password_is_printed_once_and_works(hub: Any) -> None:
    """--generate-password prints `password: …`, the only copy."""
    code, out, _ = _run(hub, "user", "add", "admin", "--role", "admin", "--unit", "HO", "--generate-password")
    assert code == 0
    password = out.split("password: ")[1].strip()
    assert len(password) >= 16
    assert Users(hub.db, hasher=CHEAP).authenticate("admin", password, now=hub.clock.time()).user is not None


def test_role_passwd_disable_enable_unlock_list(hub: Any) -> None:
    """The other verbs, and list --json with stable keys and no hash."""
    _run(hub, "user", "add", "olga", "--password-stdin", stdin="correct horse battery staple\n")
    assert _run(hub, "user", "role", "olga", "--unit", "0101", "--role", "verifier")[0] == 0
    assert _run(hub, "user", "passwd", "olga", "--password-stdin", stdin="another long passphrase\n")[0] == 0
    assert _run(hub, "user", "disable", "olga")[0] == 0
    _, out, _ = _run(hub, "user", "list", "--json")
    [entry] = json.loads(out)
    assert set(entry) == {
        "name",
        "display",
        "roles",
        "disabled",
        "locked",
        "sso_only",
        "locale",
        "last_login_at",
    }
    assert entry["roles"] == [{"unit": "0101", "role": "verifier"}] and entry["disabled"] is True
    assert "argon2" not in out
    assert _run(hub, "user", "enable", "olga")[0] == 0
    assert _run(hub, "user", "unlock", "olga")[0] == 0
    assert _run(hub, "user", "role", "olga", "--unit", "0101", "--remove")[0] == 0


@pytest.mark.parametrize(
    ("argv", "stdin", "message"),
    [
        (
            ("user", "add", "olga", "--role", "officer", "--unit", "nowhere", "--password-stdin"),
            "correct horse battery staple\n",
            "no org unit 'nowhere'",
        ),
        (
            ("user", "add", "olga", "--role", "officer", "--password-stdin"),
            "correct horse battery staple\n",
            "in pairs",
        ),
        (("user", "add", "olga", "--password-stdin"), "short\n", "at least 12"),
        (("user", "add", "olga"), "", "no terminal"),
        (
            ("user", "passwd", "ghost", "--password-stdin"),
            "correct horse battery staple\n",
            "no user 'ghost'",
        ),
    ],
)
def test_refusals_exit_1_with_one_line(hub: Any, argv: tuple[str, ...], stdin: str, message: str) -> None:
    """Unknown unit, unpaired --role, weak password, no way to ask, unknown user: exit 1, one line."""
    code, _, err = _run(hub, *argv, stdin=stdin)
    assert code == 1
    assert message in err and err.count("\n") == 1
