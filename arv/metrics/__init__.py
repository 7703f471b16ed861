"""Prometheus metrics: the series (series), where the processes keep them (directory), /metrics (endpoint)."""
