"""The Slack adapter of the core: Web API client, Block Kit builders, Slack side effects.

Uses slack_sdk only (never slack_bolt); domain services never import this package.
"""
