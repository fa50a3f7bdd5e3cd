"""Value types, clock, typed settings builder and small shared helpers; imports nothing of ours."""
