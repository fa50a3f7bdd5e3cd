"""End to end on PostgreSQL: two hub processes on one database behind a load balancer, real
agents; a hub and an agent are SIGKILLed and restarted during the flow. Every transition each
terminal committed is in the hub exactly once, and each hub hazard matches its terminal's record."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sentinel.hub.testing import (
    SAMPLE_INVENTORY,
    HubProcess,
    PostgresServer,
    RoundRobinProxy,
    write_hub_config,
)
from sentinel.testing import AgentProcess, free_port, wait_until
from tests.hub.test_e2e_agents import AGENTS, agent_config, enroll

pytestmark = pytest.mark.e2e


def cli(agent: AgentProcess, *args: str) -> subprocess.CompletedProcess[str]:
    """`sentinel hazards …` on the agent's store, as a person on the terminal would."""
    return subprocess.run(
        [sys.executable, "-m", "sentinel", "hazards", *args, "--config", str(agent.config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )


def ticketed_keys(agent: AgentProcess, terminal: str) -> set[str]:
    """The idempotency keys of every ticketed transition the terminal committed."""
    db = sqlite3.connect(agent.directory / "state" / "hazards.db")
    try:
        rows = db.execute("SELECT DISTINCT idempotency_key FROM outbox WHERE sink = 'hub'").fetchall()
    finally:
        db.close()
    return {r[0] for r in rows}


def test_two_hubs_one_postgres_survive_kills(tmp: Path, postgres: PostgresServer) -> None:
    """Raise, ack, resolve, close on three terminals while hub-a and one agent are SIGKILLed and
    restarted: the hub holds each transition once and every hazard ends closed, like the terminal."""
    url = postgres.create_database()
    ports = [free_port(), free_port()]
    configs = [
        write_hub_config(tmp / name, port=p, url=url, inventory=SAMPLE_INVENTORY)
        for name, p in zip(("hub-a", "hub-b"), ports, strict=True)
    ]
    subprocess.run(
        [sys.executable, "-m", "sentinel.hub", "--config", str(configs[0]), "migrate"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    hubs = [HubProcess(c, p) for c, p in zip(configs, ports, strict=True)]
    proxy = RoundRobinProxy(ports).start()
    agents: dict[str, AgentProcess] = {}
    engine = sa.create_engine(url)
    try:
        for hub in hubs:
            hub.wait_ready()
        for terminal, branch in AGENTS.items():
            secret = tmp / f"{terminal}.secret"
            enroll(configs[1], terminal, secret)
            path, port = agent_config(tmp / terminal, terminal, branch, proxy.url, secret)
            agents[terminal] = AgentProcess(tmp / terminal, path, port)
        for agent in agents.values():
            agent.wait_ready()

        def hub_states() -> dict[str, str]:
            with engine.connect() as c:
                return dict(c.execute(sa.text("SELECT terminal, state FROM hub_hazards")).all())

        wait_until(lambda: set(hub_states()) == set(AGENTS), timeout=60)
        hubs[0].kill()  # a replica dies mid-flow: the balancer sends everything to hub-b
        for agent in agents.values():
            cli(agent, "ack", "1", "--by", "alice")
        victim = agents["kiosk-01"]
        victim.proc.send_signal(signal.SIGKILL)
        victim.proc.wait(10)
        victim.stop()
        hubs[0] = HubProcess(configs[0], ports[0], log_name="hub-restarted.log").wait_ready()
        agents["kiosk-01"] = AgentProcess(victim.directory, victim.config, victim.port)
        agents["kiosk-01"].wait_ready()
        for agent in agents.values():
            cli(agent, "resolve", "1", "--by", "alice")
        hubs[1].proc.send_signal(signal.SIGKILL)  # and the other one, while the closes are sent
        hubs[1].proc.wait(10)
        hubs[1].stop()
        for agent in agents.values():
            cli(agent, "close", "1", "--by", "bob")
        hubs[1] = HubProcess(configs[1], ports[1], log_name="hub-b-restarted.log").wait_ready()

        wait_until(lambda: set(hub_states().values()) == {"closed"}, timeout=120)
        with engine.connect() as c:
            stored = c.execute(sa.text("SELECT terminal, key FROM hub_transitions")).all()
            records = dict(c.execute(sa.text("SELECT terminal, record FROM hub_hazards")).all())
        assert len(stored) == len({k for _, k in stored})  # each once
        for terminal, agent in agents.items():
            committed = ticketed_keys(agent, terminal)
            assert committed and {k for t, k in stored if t == terminal} == committed
            shown = json.loads(cli(agent, "show", "1", "--json").stdout)
            hub_record = json.loads(records[terminal])
            for key in ("state", "resolved_by", "closed_by", "closed_at", "severity", "rule"):
                assert hub_record[key] == shown[key], key
        assert min(proxy.connections.values()) > 0  # both replicas took requests
    finally:
        for agent in agents.values():
            agent.stop()
        proxy.stop()
        for hub in hubs:
            hub.stop()
        engine.dispose()
