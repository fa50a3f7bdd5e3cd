"""The sections whose owners sit above the config layer: `[agent]`, `[metrics]`, `[inspect]`, `[hub]` and
`[[schedules]]` (sources, rules, hazards and tickets own theirs; `sentinel.config.schema` joins all)."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sentinel.core.cron import Cron, Period, check_cron
from sentinel.core.settings import Duration, KeyPath, field, non_negative, plain_text, positive

DEFAULT_CONFIG = Path("/etc/sentinel/sentinel.toml")
"""The config file when neither --config nor $SENTINEL_CONFIG names one."""

_LISTEN = re.compile(r"^(?:\[(?P<v6>[0-9a-fA-F:.]+)\]|(?P<host>[^:\[\]]+)):(?P<port>\d{1,5})$")


def check_listen(value: str) -> str | None:
    """Check: `host:port` or `[v6]:port` with a port from 0 to 65535."""
    match = _LISTEN.match(value)
    if not match or int(match.group("port")) > 65535:
        return f'expected "host:port" like "127.0.0.1:9787", got "{value}"'
    return None


@dataclass(frozen=True, slots=True)
class AgentConfig:
    """`[agent]`: identity of the terminal and where the agent keeps its state."""

    state_dir: Path
    branch: str = field(check=plain_text)
    terminal_id: str = field(default_factory=lambda: os.uname().nodename, check=plain_text)  # gethostname()
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"
    queue_size: int = field(10_000, check=positive)
    rules_dir: Path | None = None
    collector_timeout: Duration = field(Duration(60), check=positive)
    status_interval: Duration = field(Duration(5), check=positive)


@dataclass(frozen=True, slots=True)
class AgentView:
    """`[agent]` alone, as sentinel.config.loader.load_part builds it: where the agent keeps its
    state, for `sentinel status` (no other section is imported or validated)."""

    agent: AgentConfig
    source: Path = field(default_factory=lambda: DEFAULT_CONFIG, internal=True)


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """`[metrics]`: the /metrics endpoint. Loopback unless configured otherwise."""

    listen: str = field("127.0.0.1:9787", check=check_listen)
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    client_ca_file: Path | None = None
    open_hazards_info_limit: int = field(50, check=non_negative)

    @property
    def host(self) -> str:
        """The address to bind (without brackets for IPv6)."""
        match = _LISTEN.match(self.listen)
        assert match is not None  # checked at load
        return match.group("v6") or match.group("host")

    @property
    def port(self) -> int:
        """The port to bind (0 picks a free one)."""
        return int(self.listen.rsplit(":", 1)[1])

    def validate(self) -> list[tuple[KeyPath, str]]:
        """Cert and key come together; a client CA needs TLS."""
        problems: list[tuple[KeyPath, str]] = []
        if bool(self.tls_cert_file) != bool(self.tls_key_file):
            problems.append((("tls_key_file",), "tls_cert_file and tls_key_file go together"))
        if self.client_ca_file and not self.tls_cert_file:
            problems.append((("client_ca_file",), "needs tls_cert_file and tls_key_file"))
        return problems


@dataclass(frozen=True, slots=True)
class InspectConfig:
    """`[inspect]`: where the posture checks live and what a failed check does."""

    checks_dir: Path | None = None  # default: checks.d next to the main config file
    raise_hazards: bool = True
    skip: tuple[str, ...] = ()
    root: Path = Path("/")  # filesystem root the checks read under (fixtures in tests)
    command_timeout: Duration = field(Duration(20), check=positive)


@dataclass(frozen=True, slots=True)
class ScheduleConfig:
    """One `[[schedules]]` entry."""

    name: str
    run: Literal["inspect", "drill"]
    cron: str = field(check=check_cron)
    once_per: Period = ""
    scenario: str = "all"
    catch_up: bool = True

    @property
    def parsed(self) -> Cron:
        """The cron expression, parsed (validated at load)."""
        return Cron.parse(self.cron)


@dataclass(frozen=True, slots=True)
class HubClientConfig:
    """`[hub]` of sentinel.toml: where the fleet ledger is, and how to reach it."""

    url: str = ""  # e.g. "https://hub.bank.example"; empty: no hub
    secret_file: Path | None = None  # the whsec_ secret `sentinel hub enroll` issued (same as the sink's)
    poll_interval: Duration = field(Duration(30), check=positive)
    status_interval: Duration = field(Duration(900), check=positive)
    timeout: Duration = field(Duration(10), check=positive)
    max_actions: int = field(50, check=positive)
    max_backoff: Duration = field(Duration(300), check=positive)  # while the hub is unreachable
    ca_file: Path | None = None
    client_cert_file: Path | None = None
    client_key_file: Path | None = None
    proxy: str = ""

    def validate(self) -> list[tuple[KeyPath, str]]:
        """A url needs a secret; URLs are http(s)."""
        problems: list[tuple[KeyPath, str]] = []
        if self.url and not self.url.startswith(("http://", "https://")):
            problems.append((("url",), f'expected an http(s) URL, got "{self.url}"'))
        if self.url and self.secret_file is None:
            problems.append((("secret_file",), "the hub needs the terminal's enrolled secret_file"))
        return problems
