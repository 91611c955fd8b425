"""Block Kit builders and texts of ``/rollback``: pure functions of stored data.

Nothing here reads the database or talks to Slack; every time-dependent text
takes ``now`` (ages, expiry) so that tests can pin it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from bot.clock import utc
from bot.durations import format_duration
from bot.providers import redeploy_of
from bot.rollback.models import Rollback, RollbackStatus, RollbackStep
from bot.slack.ids import ActionId
from bot.text import shown
from bot.timefmt import utc_and_local

Block = dict[str, Any]

STATE_EMOJI = {
    RollbackStatus.PREVIEW: ":hourglass_flowing_sand:",
    RollbackStatus.TRIGGERING: ":rocket:",
    RollbackStatus.ROLLING_BACK: ":arrows_counterclockwise:",
    RollbackStatus.CHECKING: ":stethoscope:",
    RollbackStatus.SUCCEEDED: ":white_check_mark:",
    RollbackStatus.FAILED: ":x:",
    RollbackStatus.CANCELED: ":no_entry_sign:",
    RollbackStatus.EXPIRED: ":zzz:",
}
STEP_EMOJI = {
    "requested": ":leftwards_arrow_with_hook:",
    "approved": ":ballot_box_with_check:",
    "confirm_waiting": ":hourglass_flowing_sand:",
    "confirmed": ":rocket:",
    "trigger_ambiguous": ":warning:",
    "trigger_unavailable": ":warning:",
    "triggered": ":arrows_counterclockwise:",
    "provider_state": ":gear:",
    "provider_unreachable": ":warning:",
    "live": ":large_green_circle:",
    "health_waiting": ":hourglass:",
    "succeeded": "",
    "failed": "",
    "canceled": ":no_entry_sign:",
    "expired": ":zzz:",
}
PROVIDER_NAMES = {"render": "Render", "railway": "Railway", "vercel": "Vercel", "heroku": "Heroku",
                  "github-actions": "GitHub Actions"}


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _mrkdwn(text: str) -> Block:
    return {"type": "mrkdwn", "text": _truncate(text, 3000)}


def _button(text: str, action_id: ActionId, value: str, style: str | None = None) -> Block:
    button: Block = {"type": "button", "action_id": action_id.value, "value": value,
                     "text": {"type": "plain_text", "text": text}}
    if style:
        button["style"] = style
    return button


def provider_label(provider: str) -> str:
    return PROVIDER_NAMES.get(provider, provider)


def _age(created_at: str | None, now: datetime) -> str | None:
    if not created_at:
        return None
    try:
        when = utc(datetime.fromisoformat(created_at))
    except ValueError:
        return None
    return f"{format_duration(now - when)} ago"


def deploy_text(deploy: Mapping[str, Any], now: datetime) -> str:
    """`dep-2` · `b2c3d4e` “Add checkout retries” · 1d ago · by carol"""
    parts = [f"`{deploy.get('id')}`"]
    sha = (deploy.get("commit_sha") or "")[:7]
    message = (deploy.get("commit_message") or deploy.get("description") or "").strip().splitlines()
    if sha:
        parts.append(f"`{sha}`" + (f" “{_truncate(message[0], 100)}”" if message else ""))
    elif message:
        parts.append(f"“{_truncate(message[0], 100)}”")
    if age := _age(deploy.get("created_at"), now):
        parts.append(age)
    parts.append(f"by {deploy['deployed_by']}" if deploy.get("deployed_by") else "deployer not reported")
    return " · ".join(parts)


def waiting_text(rollback: Rollback, missing: int) -> str:
    """``Confirmed by @a — waiting for 1 approval from the owners``."""
    return (f"Confirmed by <@{rollback.confirmed_by}> — waiting for {missing} "
            f"approval{'s' if missing != 1 else ''} from the owners")


def _counted(rollback: Rollback, approvers: Sequence[str]) -> list[str]:
    """The approvals that count: never the confirmer's own."""
    return [a for a in approvers if a != rollback.confirmed_by]


def redeploy_id(rollback: Rollback) -> str | None:
    """The new deploy the provider made of the target (Render, Railway), once it reported one."""
    return redeploy_of(rollback.provider, rollback.provider_ids or {}, rollback.target_id)


def deploys_text(rollback: Rollback, now: datetime) -> str:
    """What is live and what it goes back to, as the rollback stands now (the preview is
    updated in place: after the rollback, the target is what is live)."""
    plan = rollback.plan or {}
    current = deploy_text(plan.get("current") or {}, now)
    target = deploy_text(plan.get("target") or {}, now)
    state = RollbackStatus(rollback.state)
    if rollback.live_at is not None:  # the target went live (checking, succeeded, or failed its check)
        redeploy = redeploy_id(rollback)
        if redeploy:
            target = f"`{redeploy}`, {provider_label(rollback.provider)}'s redeploy of {target}"
        return f"*Live now*: {target}\n*Rolled back from*: {current}"
    if state in (RollbackStatus.PREVIEW, RollbackStatus.TRIGGERING, RollbackStatus.ROLLING_BACK):
        return f"*Live now*: {current}\n*Roll back to*: {target}"
    # Ended before the target went live: what was live then is most probably live still.
    return f"*Live when previewed*: {current}\n*Not rolled back to*: {target}"


def _status_line(rollback: Rollback, approvers: Sequence[str], now: datetime) -> str:
    state = RollbackStatus(rollback.state)
    line = f"{STATE_EMOJI[state]} *{state.label.capitalize()}*"
    if state == RollbackStatus.PREVIEW:
        if rollback.confirmed_by:
            missing = rollback.approvals_needed - len(_counted(rollback, approvers))
            waiting = waiting_text(rollback, missing) if missing > 0 else f"Confirmed by <@{rollback.confirmed_by}>"
            line = f"{STATE_EMOJI[state]} *{waiting}*"
        left = rollback.expires_at - now
        line += f" — expires in {format_duration(left)}" if left.total_seconds() > 0 else " — expiring"
    elif rollback.confirmed_by and state in (RollbackStatus.TRIGGERING, RollbackStatus.ROLLING_BACK,
                                             RollbackStatus.CHECKING):
        line += f" — confirmed by <@{rollback.confirmed_by}>"
        if rollback.provider_detail:
            line += f"\n{rollback.provider_detail}"
        if state == RollbackStatus.CHECKING and rollback.health_detail:
            line += f"\nHealth: {rollback.health_detail} ({rollback.health_samples} checks)"
    elif rollback.outcome:
        line += f"\n{rollback.outcome}"
    return line


def preview_blocks(
    rollback: Rollback,
    *,
    approvers: Sequence[str],
    owners: str,
    incident_key: str | None,
    now: datetime,
    zone: ZoneInfo,
    brings_back: str | None = None,
    incident_note: str | None = None,
) -> list[Block]:
    """The preview (and, updated in place, the rollback's status message).

    ``brings_back``: the warning that the target is a deploy an earlier rollback moved
    away from (shown first); ``incident_note``: why the incident it was previewed in no
    longer applies (it was resolved)."""
    plan = rollback.plan or {}
    provider = provider_label(rollback.provider)
    state = RollbackStatus(rollback.state)
    header = f"Rollback {rollback.key}: {rollback.service} ({provider})"
    if incident_note and state == RollbackStatus.PREVIEW:
        where = incident_note
    elif incident_key:
        where = f"in {incident_key} ({rollback.severity})"
    else:
        where = "no open incident: confirming opens a P2 incident for it"
    approvals = ""
    if rollback.approvals_needed:
        counted = _counted(rollback, approvers)
        got = ", ".join(f"<@{a}>" for a in counted) or "none yet"
        approvals = (f"\n*Approvals*: {len(counted)} of {rollback.approvals_needed} "
                     f"(from owners other than the one who confirms; Approve and Confirm in either order) — {got}")
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "emoji": True, "text": _truncate(header, 150)}},
        *([{"type": "section", "text": _mrkdwn(f":warning: *{brings_back}.*")}]
          if brings_back and state == RollbackStatus.PREVIEW else []),
        {"type": "section", "text": _mrkdwn(deploys_text(rollback, now))},
        {"type": "section", "text": _mrkdwn(
            f"*Requested by* <@{rollback.requested_by}> · {where}"
            + (f"\n*Reason*: {shown(rollback.reason)}" if rollback.reason else "")
            + f"\n*Who may confirm*: owners of `{rollback.service}` ({owners})" + approvals)},
        {"type": "section", "text": _mrkdwn(_status_line(rollback, approvers, now))},
    ]
    notes = [str(n) for n in plan.get("notes") or []]
    context = [f"Requested {utc_and_local(rollback.requested_at, zone)}"]
    if state == RollbackStatus.PREVIEW:
        context.append(f"expires {utc_and_local(rollback.expires_at, zone)}")
    blocks.append({"type": "context", "elements": [_mrkdwn(" · ".join(context))]
                   + [_mrkdwn(f":information_source: {n}") for n in notes[:5]]})
    if state == RollbackStatus.PREVIEW:
        value = str(rollback.id)
        elements = [_button("Confirm rollback", ActionId.ROLLBACK_CONFIRM, value, "primary")]
        if rollback.approvals_needed:
            elements.append(_button("Approve", ActionId.ROLLBACK_APPROVE, value))
        elements.append(_button("Cancel", ActionId.ROLLBACK_CANCEL, value))  # nothing destructive: neutral
        blocks.append({"type": "actions", "block_id": f"rollback-{value}", "elements": elements})
    return blocks


def preview_fallback(rollback: Rollback) -> str:
    state = RollbackStatus(rollback.state)
    return (f"Rollback {rollback.key} of {rollback.service}: {rollback.current_id} → {rollback.target_id} "
            f"({state.label})")


def step_line(step: RollbackStep) -> str:
    emoji = STEP_EMOJI.get(step.step, ":small_blue_diamond:")
    return _truncate(f"{emoji} {shown(step.text)}".strip(), 3000)


FINAL_STEPS = {"succeeded", "failed", "canceled", "expired"}


def card_blocks(rollbacks: Sequence[Rollback], *, now: datetime) -> list[Block]:
    """The rollback section of the incident card: the latest rollbacks, newest last."""
    lines = []
    for rollback in list(rollbacks)[-3:]:
        state = RollbackStatus(rollback.state)
        redeploy = redeploy_id(rollback) if rollback.live_at else None
        line = (f"{STATE_EMOJI[state]} {rollback.key} `{rollback.service}` via "
                f"{provider_label(rollback.provider)}: `{rollback.current_id}` → `{rollback.target_id}`"
                + (f" (live as `{redeploy}`, a redeploy of `{rollback.target_id}`)" if redeploy else "")
                + f" — *{state.label}*")
        if state in (RollbackStatus.ROLLING_BACK, RollbackStatus.TRIGGERING) and rollback.provider_detail:
            line += f" ({_truncate(rollback.provider_detail, 200)})"
        if state == RollbackStatus.CHECKING and rollback.health_detail:
            line += f" (health: {_truncate(rollback.health_detail, 200)})"
        if state.active and rollback.confirmed_at:
            line += f", {format_duration(now - rollback.confirmed_at)} since confirmed"
        lines.append(line)
    if not lines:
        return []
    return [{"type": "section", "block_id": "rollbacks", "text": _mrkdwn("*Rollbacks*\n" + "\n".join(lines))}]


def status_text(rollbacks: Sequence[Rollback], *, service: str | None, now: datetime, zone: ZoneInfo) -> str:
    active = [r for r in rollbacks if RollbackStatus(r.state).active]
    recent = [r for r in rollbacks if not RollbackStatus(r.state).active]
    about = f" of `{service}`" if service else ""
    if not rollbacks:
        return f"No rollbacks{about} yet. Start one with `/rollback <service>`."
    lines = [f"*Rollbacks{about}*"]
    lines.append("_In flight_" if active else "_Nothing in flight._")
    for r in active:
        lines.append(_status_row(r, now, zone))
    if recent:
        lines.append("_Recent_")
        lines += [_status_row(r, now, zone) for r in recent]
    return _truncate("\n".join(lines), 3000)


def _status_row(rollback: Rollback, now: datetime, zone: ZoneInfo) -> str:
    state = RollbackStatus(rollback.state)
    row = (f"{STATE_EMOJI[state]} *{rollback.key}* `{rollback.service}` ({provider_label(rollback.provider)}) "
           f"`{rollback.current_id}` → `{rollback.target_id}` — {state.label}; asked by <@{rollback.requested_by}> "
           f"{format_duration(now - rollback.requested_at)} ago")
    if rollback.confirmed_by:
        row += f", confirmed by <@{rollback.confirmed_by}>"
    if rollback.channel_id:
        row += f" in <#{rollback.channel_id}>"
    if not state.active and rollback.outcome:
        row += f"\n      {_truncate(rollback.outcome, 300)}"
    elif state.active and rollback.provider_detail:
        row += f"\n      {_truncate(rollback.provider_detail, 300)}"
    return row


@dataclass(frozen=True)
class ServiceRow:
    """One line of ``/rollback list``."""

    name: str
    provider: str
    where: str  # the provider's id of the service
    live: Mapping[str, Any] | None  # Deploy.to_dict() of the live deploy
    error: str | None = None
    in_flight: str | None = None  # "RB-3 rolling back"


def list_text(rows: Sequence[ServiceRow], *, now: datetime) -> str:
    if not rows:
        return "No services are configured: add `services/<name>.yaml` to the playbooks."
    lines = ["*Services* (what is live now)"]
    for row in rows:
        head = f"• *{row.name}* — {provider_label(row.provider)} `{row.where}`"
        if row.error:
            body = f":warning: {row.error}"
        elif row.live:
            body = f"live: {deploy_text(row.live, now)}"
        else:
            body = "no live deploy reported"
        line = f"{head}\n      {body}"
        if row.in_flight:
            line += f"\n      :arrows_counterclockwise: {row.in_flight}"
        lines.append(line)
    lines.append("Roll one back with `/rollback <service> [to <deploy-id>] [reason]`.")
    return _truncate("\n".join(lines), 3000)
