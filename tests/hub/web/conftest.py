"""Page tests run on SQLite (the store's queries are tested on both databases in tests/hub)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub.web.support import Web, make_web


@pytest.fixture
def db_url(tmp: Path) -> str:
    """SQLite only for the pages."""
    return f"sqlite:///{tmp / 'hub.db'}"


@pytest.fixture
def web(hub: Any) -> Iterator[Web]:
    """The pages over a hub with the sample hazards and the test people."""
    with make_web(hub) as made:
        yield made
