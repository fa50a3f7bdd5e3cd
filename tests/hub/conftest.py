"""Hub fixtures: a Hub on SQLite and on a private PostgreSQL (the same tests run on both)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("sqlalchemy", reason="the hub extra is not installed: pip install -e '.[test,hub]'")

from sentinel.hub.testing import PostgresServer, load_sample, make_hub
from tests.conftest import IN_CI


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One private PostgreSQL server for the session (each test gets its own database)."""
    missing = PostgresServer.available()
    if missing:
        message = f"PostgreSQL server not found: install {missing}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp: Path) -> str:
    """A fresh, empty database URL: SQLite in tmp, or a new database on the private server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp / 'hub.db'}"
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.create_database()


@pytest.fixture
def hub_factory(tmp: Path, db_url: str, clock: Any) -> Iterator[Callable[..., Any]]:
    """Build hubs on the test's database (same URL for each: several hub processes share it)."""
    made: list[Any] = []

    def build(**kwargs: Any) -> Any:
        kwargs.setdefault("clock", clock)
        hub = make_hub(tmp, db_url, **kwargs)
        made.append(hub)
        return hub

    yield build
    for hub in made:
        hub.db.dispose()


@pytest.fixture
def hub(hub_factory: Callable[..., Any]) -> Any:
    """A migrated hub with the sample inventory, on SQLite and on PostgreSQL."""
    return hub_factory()


@pytest.fixture
def sample_hub(hub: Any) -> tuple[Any, dict[str, Any]]:
    """A hub holding the sample hazards (testing.load_sample) and what was made."""
    return hub, load_sample(hub)
