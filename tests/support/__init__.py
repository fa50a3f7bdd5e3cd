"""The test harness: real agent processes, receivers, certificates (bench/ uses it too)."""
