"""Reading Slack's error code never raises, whatever came back instead of Slack's JSON."""

from __future__ import annotations

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.slack.client import slack_error


def _error(data, status: int) -> SlackApiError:
    response = AsyncSlackResponse(client=AsyncWebClient(), http_verb="POST",
                                  api_url="http://127.0.0.1/api/chat.postMessage", req_args={},
                                  data=data, headers={}, status_code=status)
    return SlackApiError("failed", response)


def test_slacks_own_error_code() -> None:
    assert slack_error(_error({"ok": False, "error": "not_in_channel"}, 200)) == "not_in_channel"


def test_a_text_answer_from_a_proxy_gives_its_status() -> None:
    assert slack_error(_error("<html>502 Bad Gateway</html>", 502)) == "HTTP 502"
