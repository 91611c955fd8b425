"""Escalation: each severity's matrix run as durable jobs, on-call resolution, paging.

``models`` the plan and page tables; ``service`` the database side (planning,
page records, the lifecycle subscriber; no I/O); ``engine`` the job handlers
that page, post in the incident channel and mirror acknowledgements;
``oncall_view`` the ``/incident oncall`` text; ``check`` what ``playbooks check``
needs from the configuration; ``install`` the wiring into a Runtime.
"""
