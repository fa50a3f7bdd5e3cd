"""Masking secrets: the one place Sentinel decides what is a secret in text it stores or sends.

Everything that leaves a detector as evidence, a log line, a ticket or a hub message goes through
`redact_text` / `redact_argv` / `redact_fields` first: the detectors mask command lines as they read
them, the hazard store masks every finding it records (subject, title, evidence, rectification;
tickets and the hub are built from those records), and the log configuration masks every log
line (sentinel.core.logging). The rules, in the order they apply:

- URLs with credentials: `scheme://user:secret@host` keeps the user, masks the password;
- HTTP headers: `Authorization: Bearer|Basic|Token <secret>`, `Proxy-Authorization`, and any header
  whose name says it carries a secret (`X-Api-Key`, `X-Auth-Token`, `Cookie: a=1; b=2`);
- JSON and dict-like pairs: `"API_TOKEN": "secret"`, `'password': 'secret'`, `"pin": 1234`;
- `name=value` anywhere (environment assignments, query strings, mount options, `-Dkey=value`)
  and `--name value` options, when the *name* says secret (see `secret_name`);
- program flags that take a password: `mysql -pSECRET`, `sshpass -p SECRET`, `redis-cli -a`,
  `ldapsearch -w`, `sqlcmd -P`, `curl -u user:SECRET`, `smbclient -U user%SECRET`,
  `docker login -p`, `useradd -p`, `openssl ... pass:SECRET`;
- tokens that announce themselves: GitHub `ghp_...`, Slack `xoxb-...`, AWS `AKIA...`, JWTs,
  Stripe `sk_live_...`, Standard Webhooks `whsec_...`, PEM private key blocks.

Ordinary arguments are left alone: `ssh -p 22`, `mkdir -p`, `gcc -pthread` and `--output=x` come
out as they went in. A masked value becomes `***` (the structure around it stays readable).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from sentinel.core.model import Scalar

MASK = "***"

# -- what a secret's name looks like ----------------------------------------------------------

_PARTS = re.compile(r"[-_.\s]+")
_SECRET_PARTS = frozenset(
    {
        "pass", "password", "passwd", "passphrase", "pwd", "pw", "secret", "secrets", "token",
        "tokens", "key", "apikey", "auth", "authorization", "credential", "credentials", "cred",
        "creds", "cookie", "sessionid", "sessid", "phpsessid", "jsessionid", "signature", "sig",
        "pin", "otp", "privatekey", "accesskey", "secretkey",
    }
)  # fmt: skip
_SECRET_SUFFIXES = ("password", "passwd", "passphrase", "secret", "token", "apikey", "pwd", "pass")
_KEY_WORDS = frozenset({"hotkey", "monkey", "turkey", "donkey", "jockey", "hockey", "whiskey"})
_PASS_WORDS = frozenset({"bypass", "compass", "overpass", "underpass", "surpass", "trespass"})
# a name that ends like this names *where* a secret is, or a switch, not the secret itself
_NOT_VALUE_LAST = frozenset(
    {
        "file", "path", "dir", "fd", "env", "id", "name", "type", "len", "length", "size", "stdin",
        "prompt", "hint", "command", "cmd", "helper", "policy", "algorithm", "alg", "format",
        "mode", "expiry", "expires", "ttl", "age", "count", "url", "uri", "location", "store",
        "fingerprint", "fp", "hash", "digest", "bits", "changed", "method", "methods", "source",
        "user", "username", "login", "host", "status", "result", "kind", "event", "events", "log",
        "failures", "failed", "attempts", "required", "enabled",
    }
)  # fmt: skip
_NOT_VALUE_FIRST = frozenset({"ask", "no", "prompt", "show", "use", "require", "allow", "with", "without"})


def secret_name(name: str) -> bool:
    """Whether a variable, option, header or JSON key of this name holds a secret value.

    `DB_PASSWORD`, `PGPASSWORD`, `AWS_SECRET_ACCESS_KEY`, `--api-key`, `X-Auth-Token`,
    `javax.net.ssl.keyStorePassword`: yes. `--password-file`, `--ask-pass`, `KEYBOARD`: no.
    """
    parts = [p for p in _PARTS.split(name.strip("-").lower()) if p]
    if not parts or parts[-1] in _NOT_VALUE_LAST or parts[0] in _NOT_VALUE_FIRST:
        return False
    for part in parts:
        if part in _SECRET_PARTS:
            return True
        if part.endswith(_SECRET_SUFFIXES) and part not in _PASS_WORDS:
            return True
        if part.endswith("key") and len(part) > 3 and part not in _KEY_WORDS:
            return True
        if "secret" in part or "token" in part:
            return True
    return False


# -- rules over free text ---------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]{0,31}://)([^\s/@:'\"]*):([^\s/@'\"]+)@")
_AUTH_HEADER = re.compile(
    r"(?i)\b((?:proxy-)?authorization\s*[:=]\s*)"
    r"(?:(bearer|basic|token|digest|negotiate|ntlm|apikey|sso-key|aws4-hmac-sha256)\s+)?"
    r"([^\s'\"]+)"
)
_COOKIE_HEADER = re.compile(r"(?i)\b((?:set-)?cookie\s*:\s*)((?:[^;\s'\"]+;\s*)*[^;\s'\"]+)")
_QUOTED_PAIR = re.compile(
    r"""(?P<q>\\?["'])(?P<name>[^"'\\\s:=]{1,64})(?P=q)(?P<sep>\s*[:=]\s*)"""
    r"""(?:(?P<vq>\\?["'])(?P<value>(?:\\.|[^\\]|\\(?=(?P=vq)))*?)(?P=vq)|(?P<bare>-?[0-9][0-9.]*|true|false))"""
)
_HEADER_LIKE = re.compile(r"(?<![\w-])(?P<name>[A-Za-z][\w.-]{0,63}):[ \t]*(?P<value>[^\s'\",;]+)")
_PAIR = re.compile(r"(?<![\w.-])(?P<name>-{0,2}[A-Za-z_][\w.-]{0,63})=(?P<value>[^\s&,;'\"<>)]*)")
_OPENSSL_PASS = re.compile(r"(?<![\w-])pass:(\S+)")
_SELF_ANNOUNCING = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AKIA[0-9A-Z]{16}|ASIA[0-9A-Z]{16}|sk_(?:live|test)_[A-Za-z0-9]{10,}|whsec_[A-Za-z0-9+/=]{10,}"
    r"|(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}|AIza[0-9A-Za-z_-]{30,})"
)
_PEM = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|$)", re.S
)


_PAM_TAG = re.compile(r"(?:auth|account|session|password|chauthtok|setcred)\)")
_HANDLED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})


def _pairs(text: str) -> str:
    """`name=value` with a secret name: the value goes (to the next `&`, `,`, `;` or space)."""

    def sub(m: re.Match[str]) -> str:
        name, value = m.group("name"), m.group("value")
        if not value or not secret_name(name) or (name.upper() == "PWD" and value.startswith("/")):
            return m.group(0)  # PWD=/home/bob is the working directory (sudo logs it), not a password
        return f"{m.group('name')}={MASK}"

    return _PAIR.sub(sub, text)


def _quoted_pairs(text: str) -> str:
    def sub(m: re.Match[str]) -> str:
        head = f"{m.group('q')}{m.group('name')}{m.group('q')}{m.group('sep')}"
        if not secret_name(m.group("name")):
            if m.group("vq") is None:
                return m.group(0)
            # the value may itself hold pairs (a command line with a JSON or dict argument)
            return f"{head}{m.group('vq')}{_quoted_pairs(m.group('value'))}{m.group('vq')}"
        if m.group("vq") is not None:
            return f"{head}{m.group('vq')}{MASK}{m.group('vq')}"
        return f'{head}"{MASK}"'

    return _QUOTED_PAIR.sub(sub, text)


def _headers(text: str) -> str:
    text = _AUTH_HEADER.sub(lambda m: m.group(1) + (m.group(2) + " " if m.group(2) else "") + MASK, text)
    text = _COOKIE_HEADER.sub(lambda m: m.group(1) + MASK, text)

    def sub(m: re.Match[str]) -> str:
        name = m.group("name").lower()
        if name in _HANDLED_HEADERS or m.group("value") == MASK or not secret_name(name):
            return m.group(0)
        if _PAM_TAG.match(m.group("value")) and text[m.start() - 1 : m.start()] == "(":
            return m.group(0)  # `pam_unix(passwd:chauthtok)`: PAM's service and group, no secret
        return m.group(0)[: m.start("value") - m.start()] + MASK

    return _HEADER_LIKE.sub(sub, text)


def _text_rules(text: str) -> str:
    """Every rule that needs no knowledge of which program's arguments these are."""
    if not text:
        return text
    text = _PEM.sub(lambda m: f"-----BEGIN {m.group(1)}PRIVATE KEY-----{MASK}", text)
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{m.group(2)}:{MASK}@", text)
    text = _quoted_pairs(text)
    text = _headers(text)
    text = _pairs(text)
    text = _OPENSSL_PASS.sub(f"pass:{MASK}", text)
    return _SELF_ANNOUNCING.sub(MASK, text)


# -- rules that need the program --------------------------------------------------------------

_MYSQL = frozenset(
    {
        "mysql", "mysqldump", "mysqladmin", "mysqlimport", "mysqlcheck", "mysqlshow", "mysqlpump",
        "mysqlslap", "mysqlbinlog", "mariadb", "mariadb-dump", "mariadb-admin", "mariadb-import",
        "mariadb-check", "mariadb-show", "mariadb-slap", "mariadb-binlog",
    }
)  # fmt: skip
_LDAP = frozenset(
    {
        "ldapsearch", "ldapadd", "ldapmodify", "ldapdelete", "ldapwhoami", "ldappasswd", "ldapcompare",
        "ldapmodrdn", "ldapexop",
    }
)  # fmt: skip
# program -> short flags whose next argument (or attached value) is a password
_VALUE_FLAGS: dict[str, frozenset[str]] = {
    "sshpass": frozenset({"-p"}),
    "redis-cli": frozenset({"-a"}),
    "keydb-cli": frozenset({"-a"}),
    "sqlcmd": frozenset({"-P"}),
    "bcp": frozenset({"-P"}),
    "osql": frozenset({"-P"}),
    "isql": frozenset({"-P"}),
    "mongo": frozenset({"-p"}),
    "mongosh": frozenset({"-p"}),
    "mongodump": frozenset({"-p"}),
    "mongorestore": frozenset({"-p"}),
    "mongoexport": frozenset({"-p"}),
    "mongoimport": frozenset({"-p"}),
    "useradd": frozenset({"-p"}),
    "usermod": frozenset({"-p"}),
    "openssl": frozenset({"-k"}),
    **{name: frozenset({"-w", "-s", "-a"} if name == "ldappasswd" else {"-w"}) for name in _LDAP},
}
_LOGIN_TOOLS = frozenset({"docker", "podman", "nerdctl", "buildah", "skopeo", "helm", "oras"})
_USERPASS_FLAGS: dict[str, tuple[frozenset[str], str]] = {
    "curl": (frozenset({"-u", "--user", "-U", "--proxy-user"}), ":"),
    "smbclient": (frozenset({"-U", "--user"}), "%"),
    "rpcclient": (frozenset({"-U", "--user"}), "%"),
    "smbcacls": (frozenset({"-U", "--user"}), "%"),
    "smbget": (frozenset({"-U", "--user"}), "%"),
    "net": (frozenset({"-U", "--user"}), "%"),
    "lftp": (frozenset({"-u", "--user"}), ","),
    "wget": (frozenset({"--user"}), ":"),
}
_SECRET_WORDS = frozenset({"password", "passwd", "passphrase", "token", "secret", "apikey", "bearer"})
# after a bare secret word, these (and options) are prose, not its value: log messages say "Failed
# password for root", "a password is required", "token expired" (masking them hid who and what)
_PROSE_AFTER_SECRET_WORD = frozenset(
    {
        "for", "is", "was", "are", "were", "has", "have", "had", "will", "must", "may", "not", "and",
        "or", "of", "to", "from", "by", "on", "in", "with", "the", "a", "an", "required", "attempt",
        "attempts", "changed", "change", "expired", "expires", "incorrect", "mismatch", "check",
        "failed", "failure", "authentication", "accepted", "reset", "updated", "entered", "prompt",
        "too", "unchanged", "denied", "rejected", "verification", "validation", "quality",
    }
)  # fmt: skip
_OPTION = re.compile(r"^--?[A-Za-z][\w.-]+$")
_SEPARATORS = frozenset({"|", "||", "&&", ";", "&", "(", ")", "|&"})
_WS = re.compile(r"(\s+)")


def _program(token: str) -> str:
    return token.rsplit("/", 1)[-1].strip("'\"`$();").lower()


def _known(name: str) -> bool:
    return (
        name in _MYSQL
        or name in _VALUE_FLAGS
        or name in _LOGIN_TOOLS
        or name in _USERPASS_FLAGS
        or name == "htpasswd"
    )


class _Tokens:
    """The program-aware pass over one command's tokens (argv elements or words of a line)."""

    def __init__(self) -> None:
        self.program = ""
        self.login = False
        self.mask_next = False
        self.prose_may_follow = False  # the mask is for the word after a bare secret word
        self.userpass_next = ""  # separator of the user:password value expected next

    def token(self, tok: str) -> str:
        bare = tok.strip("'\"")
        if self.mask_next:
            self.mask_next = False
            prose_may_follow, self.prose_may_follow = self.prose_may_follow, False
            if not (prose_may_follow and (tok in _PROSE_AFTER_SECRET_WORD or tok.startswith("-"))):
                return _keep_quotes(tok, MASK)
        if self.userpass_next:
            sep, self.userpass_next = self.userpass_next, ""
            return _mask_after(tok, sep)
        if bare in _SEPARATORS:
            self.program, self.login = "", False
            return tok
        name = _program(bare)
        if _known(name) and not bare.startswith("-"):
            self.program, self.login = name, False
            return tok
        if self.program in _LOGIN_TOOLS and bare == "login":
            self.login = True
            return tok
        return self._flag(tok, bare)

    def _flag(self, tok: str, bare: str) -> str:
        program = self.program
        masked = self._program_flag(tok, bare, program)
        if masked is not None:
            return masked
        if _OPTION.match(bare) and secret_name(bare):
            self.mask_next = True  # `--password x`, `--api-key x`
        elif bare.lower() in _SECRET_WORDS:
            self.mask_next = self.prose_may_follow = True  # `token x`, `Bearer x`, not `password for`
        return tok

    def _program_flag(self, tok: str, bare: str, program: str) -> str | None:
        """The token with a program-specific password masked, or None when no such flag applies."""
        if program in _MYSQL and bare.startswith("-p") and len(bare) > 2 and not bare.startswith("--"):
            return tok.replace(bare, "-p" + MASK, 1)
        flags = _VALUE_FLAGS.get(program, frozenset())
        if program in _LOGIN_TOOLS and self.login:
            flags = frozenset({"-p"})
        for flag in flags:
            if bare == flag:
                self.mask_next = True
                if program == "sshpass":
                    self.program = ""  # what follows the password is the command sshpass runs
                return tok
            if bare.startswith(flag) and len(bare) > len(flag) and not bare.startswith("--"):
                if program == "sshpass":
                    self.program = ""
                return tok.replace(bare, flag + MASK, 1)
        userpass = _USERPASS_FLAGS.get(program)
        if userpass is not None:
            userflags, sep = userpass
            if bare in userflags:
                self.userpass_next = sep
                return tok
            for flag in userflags:
                if flag.startswith("--") and bare.startswith(flag + "="):
                    return flag + "=" + _mask_after(bare[len(flag) + 1 :], sep)
                if not flag.startswith("--") and bare.startswith(flag) and len(bare) > len(flag):
                    return flag + _mask_after(bare[len(flag) :], sep)
        return None


def _keep_quotes(tok: str, value: str) -> str:
    if len(tok) >= 2 and tok[0] == tok[-1] and tok[0] in "'\"":
        return tok[0] + value + tok[0]
    return value


def _mask_after(tok: str, sep: str) -> str:
    head, found, _ = tok.partition(sep)
    return f"{head}{sep}{MASK}" if found else tok


def _htpasswd(tokens: list[str]) -> None:
    """`htpasswd -b[c] file user PASSWORD`: the last argument is the password."""
    for i, tok in enumerate(tokens):
        if _program(tok) == "htpasswd":
            rest = tokens[i + 1 :]
            if any(t.startswith("-") and "b" in t for t in rest) and len(rest) >= 3:
                tokens[-1] = MASK
            return


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command's arguments with every secret masked (element boundaries are kept)."""
    state = _Tokens()
    out = [state.token(_text_rules(arg)) for arg in argv]
    _htpasswd(out)
    # a shell script given as one argument (`sh -c "mysql -pX"`) gets the free-text pass too
    return [redact_text(arg) if " " in arg else arg for arg in out]


def redact_text(text: str) -> str:
    """Free text (a command line joined with spaces, a log message) with every secret masked."""
    if not text:
        return text
    text = _text_rules(text)
    pieces = _WS.split(text)
    state = _Tokens()
    words = pieces[0::2]
    masked = [state.token(w) if w else w for w in words]
    _htpasswd(masked)
    pieces[0::2] = masked
    return "".join(pieces)


def redact_value(value: Scalar) -> Scalar:
    """A string redacted; any other scalar as it is."""
    return redact_text(value) if isinstance(value, str) else value


def redact_field(key: str, value: Scalar) -> Scalar:
    """One evidence or log field: masked whole when its name says secret, else its text redacted."""
    if secret_name(key) and value not in (None, "", True, False):
        return MASK
    return redact_value(value)


def redact_fields(fields: Mapping[str, Scalar] | Iterable[tuple[str, Scalar]]) -> dict[str, Scalar]:
    """Evidence or log fields, each through `redact_field`."""
    items = fields.items() if isinstance(fields, Mapping) else fields
    return {key: redact_field(key, value) for key, value in items}
