"""sentinel.core.redact: no secret in a common form survives; ordinary arguments come out unchanged.

The property tests generate command lines with secrets in the forms real ones take (environment
assignments, basic-auth URLs, headers, JSON, sshpass/mysql/--password flags, token=/key=/secret=
query parameters) and check the secret is gone from the argv, the joined line and a JSON
document quoting it."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys

import pytest
import structlog
from hypothesis import example, given, settings
from hypothesis import strategies as st

from sentinel.core import logging as sentinel_logging
from sentinel.core.redact import MASK, redact_argv, redact_fields, redact_text, secret_name

# A secret always has an upper-case letter and a sign no ordinary argument below uses, so finding
# it in the output can only mean it leaked (never that an ordinary argument happens to contain it).
_TAIL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$%^~+_.-"
secrets = st.builds(
    lambda head, mark, tail: head + mark + tail,
    st.sampled_from("ABCDEFGHJKLMNPQRSTUVWXYZ"),
    st.sampled_from("!$%^~+"),
    st.text(alphabet=_TAIL, min_size=5, max_size=30),
)
url_secrets = secrets.map(lambda s: s.replace("%", "Q"))  # a URL password has no bare '%'

ENV_NAMES = (
    "AWS_SECRET_ACCESS_KEY", "DB_PASSWORD", "PGPASSWORD", "MYSQL_PWD", "GITHUB_TOKEN", "API_KEY",
    "SSHPASS", "CLIENT_SECRET", "access_token", "X_AUTH_TOKEN", "REDIS_PASSWORD", "VAULT_TOKEN",
    "SLACK_BOT_TOKEN", "PASSWORD", "secret", "token", "key", "api-key", "apikey", "passphrase",
)  # fmt: skip
env_names = st.one_of(
    st.sampled_from(ENV_NAMES),
    st.builds(
        lambda pre, word, case: case(f"{pre}{word}"),
        st.sampled_from(("", "DB_", "APP_", "SMTP_", "LDAP_", "ADMIN_", "my_", "Root")),
        st.sampled_from(("PASSWORD", "PASSWD", "SECRET", "TOKEN", "API_KEY", "PRIVATE_KEY", "PWD")),
        st.sampled_from((str.upper, str.lower, str)),
    ),
)
ordinary_word = st.one_of(
    st.sampled_from(
        (
            "-v", "-la", "--verbose", "-o", "out.txt", "--output=report.csv", "/usr/bin/env",
            "/var/log/syslog", "-p", "22", "host.example.com", "10.0.0.7:8080", "user@host",
            "mode=fast", "level=3", "--color=auto", "https://example.com/a?b=c&page=2", "-pthread",
            "--user-agent=x", "-n", "5", "--", "x.tar.gz", "--port", "443", "--name=web",
        )
    ),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789/._", min_size=1, max_size=12),
)  # fmt: skip
ordinary = st.lists(ordinary_word, max_size=5)
programs = st.sampled_from(("curl", "/usr/bin/python3", "bash", "ansible-playbook", "psql", "app"))


@st.composite
def secret_forms(draw: st.DrawFn) -> tuple[list[str], str]:
    """(argv fragment carrying a secret, the secret) in one of the forms secrets come in."""
    secret = draw(secrets)
    form = draw(st.integers(0, 17))
    if form == 0:
        return [f"{draw(env_names)}={secret}"], secret
    if form == 1:
        s = draw(url_secrets)
        scheme = draw(st.sampled_from(("https", "http", "postgresql", "mysql", "redis", "ftp", "amqp")))
        return [
            f"{scheme}://{draw(st.sampled_from(('bob', 'admin', '', 'svc.user')))}:{s}@db.example:5432/x"
        ], s
    if form == 2:
        scheme = draw(st.sampled_from(("Bearer", "bearer", "Token", "Basic")))
        value = base64.b64encode(f"bob:{secret}".encode()).decode() if scheme == "Basic" else secret
        return ["-H", f"Authorization: {scheme} {value}"], value
    if form == 3:
        header = draw(
            st.sampled_from(("X-Api-Key", "X-Auth-Token", "api-key", "X-Vault-Token", "Private-Token"))
        )
        return ["-H", f"{header}: {secret}"], secret
    if form == 4:
        key = draw(
            st.sampled_from(("API_TOKEN", "password", "client_secret", "apiKey", "accessToken", "pin"))
        )
        doc = json.dumps(
            {"user": "bob", key: secret}, separators=draw(st.sampled_from(((",", ":"), (", ", ": "))))
        )
        return ["-d", doc], secret
    if form == 5:
        return ["-d", f"{{'password': '{secret}', 'user': 'bob'}}"], secret
    if form == 6:
        attached = draw(st.booleans())
        return (["sshpass", f"-p{secret}"] if attached else ["sshpass", "-p", secret]) + [
            "ssh",
            "-p",
            "22",
            "h",
        ], secret
    if form == 7:
        flag = draw(
            st.sampled_from(
                (
                    "--password",
                    "--passwd",
                    "--db-password",
                    "--api-key",
                    "--token",
                    "--secret",
                    "--client-secret",
                    "-password",
                )
            )
        )
        return [f"{flag}={secret}"], secret
    if form == 8:
        flag = draw(st.sampled_from(("--password", "--api-key", "--token", "--auth-token", "--secret-key")))
        return [flag, secret], secret
    if form == 9:
        prog = draw(st.sampled_from(("mysql", "/usr/bin/mysqldump", "mariadb", "mysqladmin")))
        return [prog, "-u", "root", f"-p{secret}", "-h", "db", "bank"], secret
    if form == 10:
        name = draw(
            st.sampled_from(
                ("token", "key", "secret", "access_token", "api_key", "sig", "password", "X-Amz-Signature")
            )
        )
        return [f"https://api.example.com/v1/x?page=2&{name}={secret}&lang=en"], secret
    if form == 11:
        name = draw(st.sampled_from(("token", "key", "secret")))
        return [f"{name}={secret}"], secret
    if form == 12:
        return ["curl", "-u", f"admin:{secret}", "https://x.example"], secret
    if form == 13:
        return ["smbclient", "//srv/share", "-U", f"teller%{secret}"], secret
    if form == 14:
        return ["docker", "login", "-u", "bob", "-p", secret, "registry.example"], secret
    if form == 15:
        return ["redis-cli", "-h", "cache", "-a", secret, "ping"], secret
    if form == 16:
        return ["ldapsearch", "-x", "-D", "cn=admin,dc=bank", "-w", secret, "-b", "dc=bank"], secret
    return ["mount", "-o", f"username=bob,password={secret},vers=3.0", "//srv/x", "/mnt"], secret


@settings(max_examples=600, deadline=None)
@given(programs, ordinary, secret_forms(), ordinary)
@example(
    "env",
    [],
    (["AWS_SECRET_ACCESS_KEY=Q!wJalrXUtnFEMI/K7MDENG"], "Q!wJalrXUtnFEMI/K7MDENG"),
    ["aws", "s3", "ls"],
)
def test_no_secret_survives(
    program: str, before: list[str], form: tuple[list[str], str], after: list[str]
) -> None:
    """Argv and the same command as one line of text: the secret is gone from both."""
    fragment, secret = form
    argv = [program, *before, *fragment, *after]
    assert secret not in " ".join(redact_argv(argv))
    assert secret not in redact_text(" ".join(argv))
    assert secret not in redact_text(json.dumps({"cmdline": " ".join(argv)}))
    once = redact_text(" ".join(argv))
    assert redact_text(once) == once  # the store redacts what the detector already redacted


@settings(max_examples=300, deadline=None)
@given(programs, ordinary)
def test_ordinary_arguments_are_not_mangled(program: str, words: list[str]) -> None:
    """A command without secrets comes out exactly as it went in."""
    argv = [program, *words]
    assert redact_argv(argv) == argv
    assert redact_text(" ".join(argv)) == " ".join(argv)


@pytest.mark.parametrize(
    "line",
    [
        "ssh -p 2222 admin@10.0.0.1", "mkdir -p /var/lib/x", "gcc -pthread -O2 -o a a.c",
        "docker run -p 8080:80 nginx", "tar -pxf a.tar",
        "sudo: bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/ls",
        "ansible-playbook --ask-pass site.yml", "tool --password-file=/etc/pw --token-file /run/t",
    ],
)  # fmt: skip
def test_lookalikes_stay(line: str) -> None:
    """Port flags, -p of mkdir/tar, PWD=/dir and pointers to secret files are not secrets."""
    assert redact_text(line) == line


def test_fields_named_like_secrets_are_masked_whole() -> None:
    """An evidence field called password/token is masked whatever its value looks like."""
    out = redact_fields({"password": "plain", "user": "bob", "cmdline": "x --token T0k!"})
    assert out == {"password": MASK, "user": "bob", "cmdline": f"x --token {MASK}"}


def test_secret_names() -> None:
    """The name test behind every rule."""
    yes = [
        "DB_PASSWORD",
        "PGPASSWORD",
        "AWS_SECRET_ACCESS_KEY",
        "--api-key",
        "X-Auth-Token",
        "javax.net.ssl.keyStorePassword",
        "MYSQL_PWD",
    ]
    no = ["--password-file", "--ask-pass", "KEYBOARD", "PWD_HINT", "monkey", "bypass", "user", "path"]
    assert all(secret_name(n) for n in yes), [n for n in yes if not secret_name(n)]
    assert not any(secret_name(n) for n in no), [n for n in no if secret_name(n)]


def test_log_lines_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    """A secret handed to a logger never reaches the log stream, whatever field carries it."""
    stream = io.StringIO()
    sentinel_logging.configure(fmt="json", stream=stream)
    try:
        structlog.get_logger("t").warning(
            "sink_failed", url="https://svc:Hunter2!@hub.example/ingest", token="Tok!en99", extra={"pw": "x"}
        )
    finally:
        sentinel_logging.configure(fmt="json")
    line = json.loads(stream.getvalue())
    assert "Hunter2!" not in stream.getvalue() and "Tok!en99" not in stream.getvalue()
    assert line["url"] == f"https://svc:{MASK}@hub.example/ingest" and line["token"] == MASK
    assert line["extra"] == {"pw": MASK}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("Failed password for root from 192.0.2.1 port 22 ssh2", None),
        ("Accepted password for bob from 192.0.2.1 port 22 ssh2", None),
        ("bob : a password is required ; TTY=pts/0 ; USER=root ; COMMAND=/bin/ls", None),
        ("bob : 3 incorrect password attempts ; TTY=pts/0", None),
        ("pam_unix(passwd:chauthtok): password changed for marge", None),
        ("token expired for alice", None),
        ("echo password Hunter2! for", f"echo password {MASK} for"),
        ("mysql --password for", f"mysql --password {MASK}"),
        ("Authorization: Bearer for", f"Authorization: Bearer {MASK}"),
    ],
)
def test_prose_after_a_secret_word_stays(line: str, expected: str | None) -> None:
    """Log messages name the password, they do not give it: the words after it stay readable
    (the value after a bare secret word or a --password option is still masked)."""
    assert redact_text(line) == (line if expected is None else expected)


def test_an_option_after_a_bare_secret_word_stays() -> None:
    """`curl passwd -v` (found by the property test): `-v` is curl's option, not a password."""
    assert redact_argv(["curl", "passwd", "-v"]) == ["curl", "passwd", "-v"]


# Inputs that made a backtracking rule take exponential or quadratic time (one of them, `'p'='`
# followed by 4,000 `\a`, ran for more than 80 s): a command line is attacker-controlled text.
_HOSTILE = [
    "'p'='" + "\\a" * 20000,
    "'p'='" + "\\'" * 20000,
    "'a':'" * 10000,
    "\\'a\\'=\\'" * 8000,
    "'k'=\"v\\\"" * 8000,
    "a" * 40000 + "://",
    "a://b:" * 8000,
    "eyJaaaaa." * 6000,
    "cookie: " + "a; " * 15000 + "'",
    "-a.b" * 10000 + "=",
]


def test_hostile_text_is_redacted_in_linear_time() -> None:
    """Every hostile line (20-80 kB) is redacted in a child process that must finish in 60 s.

    A child, because a runaway regular expression cannot be interrupted inside this process; the
    bound is 100x what the whole set takes on a loaded 2-core machine, and the failing version
    needed minutes for the first line alone."""
    script = (
        "import json, sys\n"
        "from sentinel.core.redact import redact_argv, redact_text\n"
        "for line in json.load(sys.stdin):\n"
        "    redact_text(line); redact_argv([line]); redact_text(json.dumps({'cmdline': line}))\n"
    )
    subprocess.run(
        [sys.executable, "-c", script], input=json.dumps(_HOSTILE), text=True, check=True, timeout=60
    )
