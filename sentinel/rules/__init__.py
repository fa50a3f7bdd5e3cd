"""Rules: the only place where thresholds live. Samples and events in, findings out."""
