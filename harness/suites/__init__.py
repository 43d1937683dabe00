"""Suites; every module here registers itself (harness.registry discovers them)."""
