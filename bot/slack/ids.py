"""Action, callback and block ids, shared by the Block Kit builders and the listeners."""

from __future__ import annotations

from enum import StrEnum


class ActionId(StrEnum):
    INCIDENT_ACK = "incident_ack"
    INCIDENT_RESOLVE = "incident_resolve"
    INCIDENT_CHANGE_SEVERITY = "incident_change_severity"
    PAGE_ACK = "page_ack"  # Acknowledge button in a paging DM
    ROLLBACK_CONFIRM = "rollback_confirm"
    ROLLBACK_CANCEL = "rollback_cancel"
    ROLLBACK_APPROVE = "rollback_approve"


class CallbackId(StrEnum):
    OPEN_INCIDENT_MODAL = "open_incident_modal"


class BlockId(StrEnum):
    MODAL_SEVERITY = "modal_severity"
    MODAL_TITLE = "modal_title"
    MODAL_SERVICE = "modal_service"
