"""Reliability suites: faults, load, bad input, security (see RELIABILITY.md)."""
