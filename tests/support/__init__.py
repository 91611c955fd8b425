"""Helpers shared by the tests (spec validators, fakes)."""
