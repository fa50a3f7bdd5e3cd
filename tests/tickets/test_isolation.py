"""One hung sink must not hold up the others: an Alertmanager that accepts connections and never
answers, next to a webhook receiver, both real on 127.0.0.1."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

from sentinel import __version__
from sentinel.core.clock import SYSTEM_CLOCK
from sentinel.core.settings import Duration
from sentinel.hazards.config import HazardsConfig
from sentinel.hazards.store import HazardStore
from sentinel.testing import wait_until
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.dispatcher import Dispatcher
from sentinel.tickets.ticketing import Ticketing
from tests.hazards.conftest import finding
from tests.tickets.test_transport import SECRET, Receiver


class SilentServer:
    """Accepts TCP connections and never answers (a hung Alertmanager); counts them."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="silent-server")
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                self.accepted.append(self._listener.accept()[0])
            except TimeoutError:
                continue

    def stop(self) -> None:
        """Hang up on every client (their attempts end at once) and stop accepting."""
        self._stop.set()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()
        self._listener.close()


def test_a_hung_alertmanager_does_not_delay_webhook_deliveries(tmp: Path) -> None:
    """While Alertmanager re-sends hang until their 3 s timeout, a new webhook ticket goes out at once."""
    (tmp / "hook.secret").write_bytes(SECRET)
    silent, receiver = SilentServer(), Receiver()
    sinks = [
        SinkConfig(
            name="am",
            type="alertmanager",
            urls=(silent.url,),
            timeout=Duration(3),
            resend_interval=Duration(1),
        ),
        SinkConfig(
            name="hook",
            type="webhook",
            url=receiver.url,
            secret_file=tmp / "hook.secret",
            timeout=Duration(3),
        ),
    ]
    store = HazardStore(
        tmp / "h.db",
        config=HazardsConfig(),
        terminal="t1",
        branch="0101",
        clock=SYSTEM_CLOCK,
        ticketer=Ticketing(
            terminal="t1",
            branch="0101",
            agent_version=__version__,
            sinks_for=lambda r, t: [s.name for s in sinks if s.wants(r, t)],
        ),
    )
    dispatcher = Dispatcher(tmp / "h.db", sinks, poll_interval=0.05, seed=1)
    try:
        store.apply(finding(SYSTEM_CLOCK, subject="/first", rectification=()))
        dispatcher.start()
        receiver.wait_for(lambda r: len(r.delivered()) == 1)
        # the first alert and the first re-send of the firing hazard both hang now
        wait_until(lambda: len(silent.accepted) >= 2)
        committed = time.monotonic()
        store.apply(finding(SYSTEM_CLOCK, subject="/second", rectification=()))
        dispatcher.wake()
        receiver.wait_for(lambda r: len(r.delivered()) == 2, timeout=10)
        assert receiver.delivered()[-1].at - committed < 1.0
    finally:
        silent.stop()
        dispatcher.stop()
        store.close()
        receiver.stop()
