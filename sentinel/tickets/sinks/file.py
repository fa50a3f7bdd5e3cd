"""The file sink: JSON lines appended to a file (0600), fsynced once per batch, for terminals
whose log shipper (Filebeat, Vector, Fluent Bit) forwards files."""

from __future__ import annotations

from collections.abc import Sequence

from sentinel.core.files import UnsafePathError, append_durably
from sentinel.tickets.config import SinkConfig
from sentinel.tickets.outbox import OutboxRow
from sentinel.tickets.sinks.base import DELIVERED, Outcome


class FileSink:
    """Appends each ticket payload as one line."""

    batched = True

    def __init__(self, config: SinkConfig) -> None:
        assert config.path is not None  # validated at load
        self.name = config.name
        self.config = config
        self.path = config.path

    def send(self, row: OutboxRow) -> Outcome:
        """One row (a batch of one)."""
        return self.send_batch([row])[0]

    def send_batch(self, rows: Sequence[OutboxRow]) -> list[Outcome]:
        """Append every row, then fsync once; a failure retries the whole batch."""
        data = b"".join(row.payload.encode("utf-8") + b"\n" for row in rows)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # the directory may be a shared log directory: never through a planted link
            append_durably(self.path, data)
        except UnsafePathError as exc:
            return [Outcome("retry", str(exc))] * len(rows)
        except OSError as exc:
            return [Outcome("retry", f"{self.path}: {exc.strerror or exc}")] * len(rows)
        return [DELIVERED] * len(rows)

    def close(self) -> None:
        """Nothing to release."""
