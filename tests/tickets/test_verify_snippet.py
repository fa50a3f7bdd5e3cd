"""The receiver-side verification snippet of docs/tickets.md, run as written against real signed
deliveries of a real agent, given the secret file's contents (`whsec_<base64>`) as a receiver
holds them — one key, then two during a rotation."""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.e2e.test_agent_process import BURNING_RULE
from tests.support.agent import AgentProcess
from tests.support.net import WebhookReceiver

ROOT = Path(__file__).resolve().parents[2]
_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def doc_snippet() -> dict[str, Any]:
    """The namespace of the documented verifier (the python block that defines `verify`)."""
    blocks = [b for b in _BLOCK.findall((ROOT / "docs" / "tickets.md").read_text()) if "def verify" in b]
    assert len(blocks) == 1, "docs/tickets.md must hold exactly one verification snippet"
    namespace: dict[str, Any] = {}
    exec(compile(blocks[0], "docs/tickets.md", "exec"), namespace)  # our own doc, as a reader copies it
    return namespace


class RawReceiver(WebhookReceiver):
    """Accepts everything and keeps each delivery as the receiver's code would see it."""

    def __init__(self) -> None:
        super().__init__(secret=None)
        self.raw: list[tuple[dict[str, str], bytes]] = []

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        self.raw.append(({k.lower(): v for k, v in headers.items()}, body))
        return super().handle(headers, body)


def whsec() -> str:
    """A secret line exactly as deploy/install.sh writes one."""
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def test_the_documented_snippet_verifies_real_deliveries_from_the_secret_file(
    start_agent: Callable[..., AgentProcess], tmp: Path
) -> None:
    """Every delivery verifies with the file's contents; a changed body or another key does not;
    during a rotation (two lines, two signatures) the old and the new key each verify."""
    verify = doc_snippet()["verify"]
    old = whsec()
    secret_file = tmp / "webhook.secret"
    secret_file.write_text(old + "\n")
    receiver = RawReceiver().start()
    try:
        sink = (
            f'\n[[sinks]]\nname = "hook"\ntype = "webhook"\nurl = "{receiver.url}"\n'
            'secret_file = "webhook.secret"\n'
        )
        agent = start_agent(BURNING_RULE + sink)
        receiver.wait_for(lambda got: len(got) >= 1)
        new = whsec()
        secret_file.write_text(f"{old}\n{new}\n")  # rotation: re-read without a restart
        ack = subprocess.run(
            [
                sys.executable,
                "-m",
                "sentinel",
                "hazards",
                "ack",
                "1",
                "--by",
                "t",
                "--config",
                str(agent.config),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert ack.returncode == 0, ack.stderr
        receiver.wait_for(lambda got: len(got) >= 2)
    finally:
        receiver.stop()
    (h1, b1), (h2, b2) = receiver.raw[:2]
    assert verify(old + "\n", h1, b1)
    assert not verify(old, h1, b1 + b" ") and not verify(new, h1, b1)
    assert len(h2["webhook-signature"].split()) == 2
    assert verify(old, h2, b2) and verify(new + "\n", h2, b2) and verify(f"{old}\n{new}\n", h2, b2)
    assert not verify(whsec(), h2, b2)
