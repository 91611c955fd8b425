"""Firebreak: incident and rollback ChatOps bot (core, free of slack_bolt)."""
