"""hub.toml: the hub's configuration, typed and range-checked, unknown keys are errors.

    [hub]        listen, state_dir, inventory, master_key_file, public_url, log_format
    [database]   url (sqlite:///… or postgresql+psycopg://…), password_file, pool_size, busy_timeout
    [ingest]     max_body, tolerance (replay window), batch_size, batch_wait
    [actions]    lease, max_per_poll, keep
    [terminals]  silent_after (the default interval after which a quiet terminal is "silent")
    [tls]        cert_file, key_file, client_ca_file (mutual TLS with the bank's CA)
    [web]        the pages, logins and sessions (sentinel/hub/webconfig.py)

The same settings Builder as the agent's config (sentinel.core.settings): every error names the
file and key, all of them are reported at once, and `load()` raises HubConfigError with the list;
every number has its range in sentinel/hub/bounds.py.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sentinel.core.settings import Builder, Duration, KeyPath, Size, field, format_path
from sentinel.core.tomlread import TomlFileError, read_toml_file
from sentinel.hub.bounds import hub_bounds
from sentinel.hub.webconfig import WebConfig

DEFAULT_CONFIG = Path("/etc/sentinel-hub/hub.toml")
CONFIG_ENV = "SENTINEL_HUB_CONFIG"
_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


class HubConfigError(Exception):
    """The configuration cannot be used; `problems` lists every reason, each naming file and key."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


def _listen(value: str) -> str | None:
    match = _LISTEN.match(value)
    if not match or not 0 < int(match.group("port")) < 65536:
        return f'expected "host:port" (e.g. "127.0.0.1:8780"), got "{value}"'
    return None


def _db_url(value: str) -> str | None:
    if value.startswith(("sqlite:///", "postgresql+psycopg://", "postgresql://")):
        if re.match(r"^postgresql(\+psycopg)?://[^/@]*:[^/@]*@", value):
            return "put the password in database.password_file, never in the URL"
        return None
    return f'expected "sqlite:///PATH" or "postgresql+psycopg://user@host/db", got "{value}"'


@dataclass(frozen=True, slots=True)
class ServerConfig:
    """`[hub]`: where the hub listens and keeps its files."""

    listen: str = field("127.0.0.1:8780", check=_listen)
    state_dir: Path = Path("/var/lib/sentinel-hub")
    inventory: Path | None = None
    master_key_file: Path | None = None  # default: <state_dir>/master.key
    public_url: str = ""  # how people and agents reach it (printed by `make run`, used in links)
    log_format: Literal["auto", "json", "console"] = "auto"
    workers: int = field(1)  # uvicorn worker processes

    @property
    def host(self) -> str:
        """The listen address without the port."""
        return self.listen.rsplit(":", 1)[0].strip("[]")

    @property
    def port(self) -> int:
        """The listen port."""
        return int(self.listen.rsplit(":", 1)[1])

    @property
    def key_file(self) -> Path:
        """The master key that per-terminal secrets are derived from."""
        return self.master_key_file or self.state_dir / "master.key"


@dataclass(frozen=True, slots=True)
class DatabaseConfig:
    """`[database]`: SQLite (embedded default) or PostgreSQL."""

    url: str = field("", check=lambda v: _db_url(v) if v else None)  # default: sqlite in state_dir
    password_file: Path | None = None
    pool_size: int = field(8)
    busy_timeout: Duration = field(Duration(10))
    echo: bool = False


@dataclass(frozen=True, slots=True)
class IngestConfig:
    """`[ingest]`: the signed ticket webhook."""

    max_body: Size = field(Size(1024 * 1024))
    tolerance: Duration = field(Duration(300))  # replay window, each way
    batch_size: int = field(500)  # tickets per group commit
    batch_wait: Duration = field(Duration(0.002))  # to gather a batch


@dataclass(frozen=True, slots=True)
class ActionsConfig:
    """`[actions]`: the queue of hub actions the terminals pull."""

    lease: Duration = field(Duration(30))  # re-offered after this
    max_per_poll: int = field(50)
    keep: Duration = field(Duration(400 * 86400))


@dataclass(frozen=True, slots=True)
class TerminalsConfig:
    """`[terminals]`: when a quiet terminal counts as silent (the inventory may say per terminal)."""

    silent_after: Duration = field(Duration(300))


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """`[tls]`: HTTPS for the hub itself; `client_ca_file` asks agents for certificates."""

    cert_file: Path | None = None
    key_file: Path | None = None
    client_ca_file: Path | None = None

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Certificate and key go together; a client CA needs TLS."""
        if bool(self.cert_file) != bool(self.key_file):
            return [(("key_file",), "cert_file and key_file go together")]
        if self.client_ca_file and not self.cert_file:
            return [(("client_ca_file",), "mutual TLS needs cert_file and key_file")]
        return []


@dataclass(frozen=True, slots=True)
class HubConfig:
    """The whole hub.toml."""

    hub: ServerConfig = dataclasses.field(default_factory=ServerConfig)
    database: DatabaseConfig = dataclasses.field(default_factory=DatabaseConfig)
    ingest: IngestConfig = dataclasses.field(default_factory=IngestConfig)
    actions: ActionsConfig = dataclasses.field(default_factory=ActionsConfig)
    terminals: TerminalsConfig = dataclasses.field(default_factory=TerminalsConfig)
    tls: TlsConfig = dataclasses.field(default_factory=TlsConfig)
    web: WebConfig = dataclasses.field(default_factory=WebConfig)
    source: Path | None = field(None, internal=True)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL (SQLite in the state directory unless configured)."""
        return self.database.url or f"sqlite:///{self.hub.state_dir / 'hub.db'}"

    @property
    def is_sqlite(self) -> bool:
        """Whether the store is the embedded SQLite file."""
        return self.database_url.startswith("sqlite")


def build(data: dict[str, Any], *, source: Path | None = None) -> HubConfig:
    """Build a HubConfig from parsed TOML; HubConfigError lists every problem."""
    base = source.parent if source else Path.cwd()
    builder = Builder(lambda _path: base, hub_bounds)
    config = builder.build(HubConfig, data, ())
    if builder.errors or config is None:
        where = f"{source}: " if source else ""
        raise HubConfigError([f"{where}{format_path(p) or '(top)'}: {m}" for p, m in builder.errors])
    return dataclasses.replace(config, source=source)


def load(path: str | os.PathLike[str] | None = None) -> HubConfig:
    """Read hub.toml (argument, else $SENTINEL_HUB_CONFIG, else /etc/sentinel-hub/hub.toml)."""
    chosen = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG)
    try:
        data = read_toml_file(chosen)
    except TomlFileError as exc:
        raise HubConfigError([str(exc)]) from None
    return build(data, source=chosen.resolve())
