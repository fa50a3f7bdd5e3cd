"""Tickets: hazard transitions delivered to ticketing systems from a durable outbox."""
