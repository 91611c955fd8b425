"""Post-mortem export: Markdown, JSON, HTML and a GitHub issue; the web timeline; follow-ups.

Layout:

- ``models``     follow-ups and the GitHub issue remembered per incident;
- ``service``    database access (keyword-only functions, the caller's session);
- ``document``   the post-mortem as plain data, built from the incident and its facts;
- ``names``      Slack user and channel ids as names (a cached directory) and mrkdwn as text;
- ``markdown``, ``jsonexport``, ``html``, ``svg``  pure renderers;
- ``pipeline``   streams an export chunk by chunk (bounded memory, any size of timeline);
- ``github``     the issue in ``POSTMORTEM_GITHUB_REPO`` through PyGithub;
- ``web``        ``/incidents`` pages and downloads behind ``WEB_AUTH_TOKEN``;
- ``cli``        ``firebreak export``.
"""
