"""Who may confirm a rollback: the playbook's ``owners``, user groups resolved
through Slack's ``usergroups.users.list`` at the moment of the click (fail closed)."""

from __future__ import annotations

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.playbooks.models import ServicePlaybook
from bot.slack.client import slack_error


class OwnersUnavailable(Exception):
    """A user group could not be read: nobody is treated as an owner through it."""


async def owner_ids(client: AsyncWebClient, playbook: ServicePlaybook) -> frozenset[str]:
    users = set(playbook.owner_user_ids)
    for group in playbook.owner_group_ids:
        try:
            response = await client.usergroups_users_list(usergroup=group)
        except SlackApiError as exc:
            error = slack_error(exc)
            raise OwnersUnavailable(f"Slack did not list the members of the owner group {group} ({error})") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise OwnersUnavailable(f"Slack did not answer when asked for the members of the owner group "
                                    f"{group} ({type(exc).__name__})") from None
        users.update(str(u) for u in response.get("users") or [])
    return frozenset(users)


async def is_owner(client: AsyncWebClient, playbook: ServicePlaybook, user_id: str) -> bool:
    if user_id in playbook.owner_user_ids:
        return True
    return user_id in await owner_ids(client, playbook)
