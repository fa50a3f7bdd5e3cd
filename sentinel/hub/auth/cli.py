"""`sentinel hub user …`: the hub's people, from the command line of the hub's server.

    user add NAME [--display TEXT] [--role ROLE --unit UNIT]... [--locale zh_CN|en]
                  [--password-stdin | --generate-password | --sso-only]
    user passwd NAME [--password-stdin | --generate-password]
    user role NAME --unit UNIT (--role ROLE | --remove)
    user disable NAME | enable NAME | unlock NAME
    user list [--json]

Passwords are read from the terminal (twice, not echoed), from one line of standard input
(`--password-stdin`), or generated (`--generate-password` prints it once, the only time it is
shown). Nothing here logs or prints a hash. Exit codes: 0 done, 1 refused (UserError), 2 usage
or configuration.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import sys
from typing import Any, TextIO

from sentinel.hub.auth.roles import Grant, Role
from sentinel.hub.auth.users import LOCALES, UserError, Users

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add `user` and its subcommands to the `sentinel hub` parser's subparsers."""
    user = subparsers.add_parser("user", help="manage the hub's users and their roles per org unit")
    verbs = user.add_subparsers(dest="user_command", required=True, metavar="COMMAND")

    add = verbs.add_parser("add", help="create a user")
    add.add_argument("name")
    add.add_argument("--display", default="", help="the name shown in the pages and the trail")
    add.add_argument(
        "--role",
        action="append",
        default=[],
        choices=[r.label for r in Role],
        help="a role (with --unit; repeat the pair for several units)",
    )
    add.add_argument("--unit", action="append", default=[], help="an org unit id of the inventory")
    add.add_argument("--locale", default="", choices=["", *LOCALES])
    _password_options(add, sso=True)

    passwd = verbs.add_parser("passwd", help="set a new password (ends the user's sessions)")
    passwd.add_argument("name")
    _password_options(passwd, sso=False)

    role = verbs.add_parser("role", help="give or take away a role on an org unit")
    role.add_argument("name")
    role.add_argument("--unit", required=True)
    group = role.add_mutually_exclusive_group(required=True)
    group.add_argument("--role", choices=[r.label for r in Role])
    group.add_argument("--remove", action="store_true", help="take away the role on this unit")

    for verb, text in (
        ("disable", "refuse the user's logins and end their sessions"),
        ("enable", "allow the user's logins again"),
        ("unlock", "lift a lockout after failed logins"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("name")

    listing = verbs.add_parser("list", help="the users, their roles and lockouts")
    listing.add_argument("--json", action="store_true")
    return user  # type: ignore[no-any-return]


def _password_options(parser: argparse.ArgumentParser, *, sso: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password-stdin", action="store_true", help="read the password from one line of stdin"
    )
    group.add_argument("--generate-password", action="store_true", help="make a random one and print it once")
    if sso:
        group.add_argument(
            "--sso-only", action="store_true", help="no password: logs in through single sign-on only"
        )


def run(
    args: argparse.Namespace,
    hub: Any,
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    hasher: Any = None,
) -> int:
    """Carry out one `user` command on a migrated Hub (`hasher`: tests pass a cheap one)."""
    stdin, stdout, stderr = stdin or sys.stdin, stdout or sys.stdout, stderr or sys.stderr
    web = hub.config.web
    users = Users(
        hub.db, hasher=hasher, lockout_attempts=web.lockout_attempts, lockout_period=float(web.lockout_period)
    )
    now = hub.clock.time()
    try:
        return _run(args, hub, users, now, stdin, stdout)
    except UserError as exc:
        print(f"sentinel hub user: {exc}", file=stderr)
        return EXIT_REFUSED


def _run(  # noqa: PLR0912 - one branch per verb reads best
    args: argparse.Namespace, hub: Any, users: Users, now: float, stdin: TextIO, stdout: TextIO
) -> int:
    command = args.user_command
    if command == "add":
        if len(args.role) != len(args.unit):
            raise UserError("give --role and --unit in pairs (one --unit for each --role)")
        grants = [
            Grant(_unit(hub, unit), Role.parse(role)) for role, unit in zip(args.role, args.unit, strict=True)
        ]
        password, generated = (None, False) if args.sso_only else _password(args, stdin)
        user = users.add(
            args.name,
            password=password,
            display=args.display,
            grants=grants,
            locale=args.locale,
            by="cli",
            now=now,
        )
        print(f"user {user.name} added ({_grants_text(user.grants) or 'no role yet'})", file=stdout)
        if generated:
            print(f"password: {password}", file=stdout)
        return EXIT_OK
    if command == "passwd":
        password, generated = _password(args, stdin)
        assert password is not None
        users.set_password(args.name, password, now=now)
        print(f"password of {args.name} changed; their sessions ended", file=stdout)
        if generated:
            print(f"password: {password}", file=stdout)
        return EXIT_OK
    if command == "role":
        unit = _unit(hub, args.unit)
        if args.remove:
            if not users.revoke(args.name, unit):
                raise UserError(f"{args.name} has no role on {unit}")
            print(f"{args.name}: role on {unit} removed", file=stdout)
        else:
            users.grant(args.name, Grant(unit, Role.parse(args.role)))
            print(f"{args.name}: {args.role} on {unit}", file=stdout)
        return EXIT_OK
    if command in ("disable", "enable"):
        users.set_disabled(args.name, command == "disable")
        print(f"{args.name} {command}d", file=stdout)
        return EXIT_OK
    if command == "unlock":
        users.unlock(args.name)
        print(f"{args.name} unlocked", file=stdout)
        return EXIT_OK
    if command == "list":
        listed = users.list()
        if args.json:
            json.dump([_user_json(u, now) for u in listed], stdout, indent=2, ensure_ascii=False)
            stdout.write("\n")
        else:
            for u in listed:
                flags = [
                    f
                    for f, on in (
                        ("disabled", u.disabled),
                        ("locked", u.locked(now)),
                        ("sso-only", not u.has_password),
                    )
                    if on
                ]
                roles = _grants_text(u.grants) or "-"
                print(
                    f"{u.name}\t{u.display or '-'}\t{roles}\t{','.join(flags) or 'ok'}",
                    file=stdout,
                )
        return EXIT_OK
    raise UserError(f"unknown command {command!r}")


def _unit(hub: Any, unit_id: str) -> str:
    if hub.inventory.unit(unit_id) is None:
        known = ", ".join(sorted(hub.inventory.units)[:20])
        raise UserError(f"no org unit {unit_id!r} in the inventory (known: {known})")
    return unit_id


def _password(args: argparse.Namespace, stdin: TextIO) -> tuple[str | None, bool]:
    if args.generate_password:
        return secrets.token_urlsafe(15), True
    if args.password_stdin:
        line = stdin.readline().rstrip("\r\n")
        if not line:
            raise UserError("no password on standard input")
        return line, False
    if not stdin.isatty():
        raise UserError("no terminal to ask for the password: use --password-stdin or --generate-password")
    first = getpass.getpass("new password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first, False


def _grants_text(grants: tuple[Grant, ...]) -> str:
    return ", ".join(f"{g.role.label}@{g.unit}" for g in grants)


def _user_json(user: Any, now: float) -> dict[str, Any]:
    return {
        "name": user.name,
        "display": user.display,
        "roles": [{"unit": g.unit, "role": g.role.label} for g in user.grants],
        "disabled": user.disabled,
        "locked": user.locked(now),
        "sso_only": not user.has_password,
        "locale": user.locale,
        "last_login_at": user.last_login_at,
    }
