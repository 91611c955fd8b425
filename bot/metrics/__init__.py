"""Prometheus metrics at ``/metrics``: a registry per runtime, derived from the database.

Gauges and counters are computed from the incidents and their timelines at
scrape time (at most every few seconds), so a restart or a second replica
never resets or double-counts them. Other concerns may register their own
collectors in :func:`bot.metrics.install.registry_for`.
"""
