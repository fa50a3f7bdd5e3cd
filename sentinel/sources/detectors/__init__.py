"""Suspicious-event detectors: Events about what happened on the terminal."""
