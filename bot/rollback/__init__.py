"""``/rollback``: safe rollbacks through the hosting provider's API, from Slack.

- :mod:`bot.rollback.models` — the ``rollbacks`` table (one in flight per service,
  enforced by a unique partial index), its steps and approvals;
- :mod:`bot.rollback.service` — keyword-only domain functions (no Slack, no HTTP);
- :mod:`bot.rollback.flow` — the durable jobs that trigger, follow and health-check
  a rollback, and mirror every step into Slack;
- :mod:`bot.rollback.blocks` — pure Block Kit builders;
- :mod:`bot.rollback.commands` — parsing of ``/rollback`` text.
"""
