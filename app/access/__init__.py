"""Access control beyond the key check: per-key request counters and the rate limit."""
