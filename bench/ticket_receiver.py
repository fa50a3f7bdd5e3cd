"""`python -m bench.ticket_receiver SECRET_FILE EXPECTED OUT`: a signed-webhook receiver in its own
process (as a real receiver is: it must not share the sender's interpreter lock), HTTP/1.1 with
keep-alive, verifying every signature. Prints its port, then writes `{hazard id: arrival time}`
(time.time()) as JSON to OUT once EXPECTED tickets have arrived (or on SIGTERM), and exits."""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from pathlib import Path

from tests.support.net import WebhookReceiver


def main(argv: list[str]) -> int:
    secret, expected, out = Path(argv[0]).read_bytes(), int(argv[1]), Path(argv[2])
    receiver = WebhookReceiver(secret, keep_alive=True)
    arrivals: dict[int, float] = {}
    done = threading.Event()
    original = receiver.handle

    def handle(headers: dict[str, str], body: bytes) -> int:
        code = original(headers, body)
        if code == 200:
            arrivals[int(json.loads(body)["hazard"]["id"])] = time.time()
            if len(arrivals) >= expected:
                done.set()
        return code

    receiver.handle = handle  # type: ignore[method-assign]
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    receiver.start()
    print(receiver.port, flush=True)
    done.wait()
    receiver.stop()
    out.write_text(json.dumps({"arrivals": arrivals, "bad_signatures": receiver.bad_signatures}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
