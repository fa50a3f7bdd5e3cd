"""Real-process fixtures: the agent (sentinel.testing, re-exported) and Alertmanager peers."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sentinel.testing import wait_until
from tests.conftest import require_tool
from tests.support.agent import AgentProcess, wait_for_log
from tests.support.net import free_port

__all__ = ["AgentProcess", "Alertmanager", "wait_for_log"]

AM_CONFIG = """
route:
  receiver: tickets
  group_by: [hazard_id]
receivers:
  - name: tickets
"""


class Alertmanager:
    """One Alertmanager process on loopback, optionally clustered with peers."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        cluster_port: int | None = None,
        peers: tuple[int, ...] = (),
        port: int | None = None,
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "am.yml").write_text(AM_CONFIG)
        self.port = port or free_port()
        cluster = (
            [f"--cluster.listen-address=127.0.0.1:{cluster_port}"]
            if cluster_port
            else ["--cluster.listen-address="]
        )
        cluster += [f"--cluster.peer=127.0.0.1:{p}" for p in peers]
        self.log = open(directory / "am.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={directory / 'am.yml'}",
                f"--storage.path={directory / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                *cluster,
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        wait_until(self.ready, timeout=20)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def alerts(self, active: bool = True) -> list[dict[str, Any]]:
        query = "?active=true&silenced=false&inhibited=false" if active else ""
        with urllib.request.urlopen(self.url + "/api/v2/alerts" + query, timeout=5) as response:
            return list(json.loads(response.read()))

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.log.close()


@pytest.fixture
def alertmanager(tmp: Path) -> Iterator[Callable[..., Alertmanager]]:
    binary = require_tool("prometheus-alertmanager", "prometheus-alertmanager")
    started: list[Alertmanager] = []

    def start(name: str = "am", **kwargs: Any) -> Alertmanager:
        am = Alertmanager(binary, tmp / name, **kwargs)
        started.append(am)
        return am

    yield start
    for am in started:
        am.stop()
