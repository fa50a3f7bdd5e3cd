"""Side-by-side benchmarks of Sentinel against the real peers (`make bench`)."""
