"""Escalation: the matrix of each severity run as durable jobs, on-call resolution, paging.

``service`` holds the database side (plans, page records, the lifecycle
subscriber), ``engine`` the job handlers that page and post, ``oncall_view`` the
``/incident oncall`` text, ``install`` the wiring into a Runtime.
"""
