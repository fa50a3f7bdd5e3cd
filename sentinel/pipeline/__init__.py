"""The bounded queue, the single writer thread, and the runners that feed it."""
