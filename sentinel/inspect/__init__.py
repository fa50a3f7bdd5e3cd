"""Inspections: posture checks, health snapshot, baseline and hazard summary in one report."""
