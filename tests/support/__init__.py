"""Test infrastructure: where the servers come from, polling with a deadline, a TCP proxy for outages."""
