"""Requests into the bot, signed exactly as Slack signs them."""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier


def sign(secret: str, body: str, timestamp: int | None = None) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(ts), body=body)
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": signature}


def slash_command_body(*, command: str, text: str, user_id: str, channel_id: str,
                       response_url: str, trigger_id: str, team_id: str = "T0FIREBRK",
                       user_name: str = "someone", channel_name: str = "general") -> str:
    return urlencode({
        "token": "verification-token-unused", "team_id": team_id, "team_domain": "firebreak",
        "channel_id": channel_id, "channel_name": channel_name, "user_id": user_id,
        "user_name": user_name, "command": command, "text": text, "api_app_id": "A0FIREBRK",
        "is_enterprise_install": "false", "response_url": response_url, "trigger_id": trigger_id,
    })


def interactive_body(payload: dict[str, Any]) -> str:
    return urlencode({"payload": json.dumps(payload)})


def event_body(event: dict[str, Any], *, event_id: str, team_id: str = "T0FIREBRK") -> str:
    return json.dumps({
        "token": "verification-token-unused", "team_id": team_id, "api_app_id": "A0FIREBRK",
        "event": event, "type": "event_callback", "event_id": event_id,
        "event_time": int(time.time()), "authorizations": [
            {"team_id": team_id, "user_id": "U0FIREBOT", "is_bot": True}],
    })
