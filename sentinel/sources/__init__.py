"""Everything that observes, behind the Polled/Streaming protocols (sentinel.sources.base)."""
