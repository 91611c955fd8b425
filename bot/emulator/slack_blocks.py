"""Block Kit limits, checked the way Slack checks them.

Problems are reported like Slack does, one line per problem in ``response_metadata.messages``:
``[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]``.
Messages fail with ``invalid_blocks`` (``invalid_blocks_format`` when ``blocks`` is not a JSON
array of objects); views fail with ``invalid_arguments``, as views.open does.
"""

from __future__ import annotations

from typing import Any

from bot.emulator.slack_state import SlackApiFailure

MAX_MESSAGE_BLOCKS = 50
MAX_VIEW_BLOCKS = 100
MAX_SECTION_TEXT = 3000
MAX_SECTION_FIELDS = 10
MAX_FIELD_TEXT = 2000
MAX_HEADER_TEXT = 150
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000
MAX_URL = 3000
MAX_ID = 255  # action_id, block_id, callback_id
MAX_VIEW_TITLE = 24
MAX_VIEW_BUTTON = 24  # submit / close
MAX_PRIVATE_METADATA = 3000
MAX_ACTIONS_ELEMENTS = 25
MAX_CONTEXT_ELEMENTS = 10
MAX_OPTIONS = 100
MAX_OPTION_TEXT = 75
MAX_OPTION_VALUE = 150
MAX_PLACEHOLDER = 150
MAX_LABEL = 2000
MAX_MESSAGE_TEXT = 40_000

BLOCK_TYPES = frozenset(
    {"actions", "context", "divider", "file", "header", "image", "input", "markdown", "rich_text", "section", "video"}
)
INTERACTIVE_ELEMENTS = frozenset(
    {
        "button",
        "checkboxes",
        "datepicker",
        "datetimepicker",
        "email_text_input",
        "file_input",
        "image",
        "multi_channels_select",
        "multi_conversations_select",
        "multi_external_select",
        "multi_static_select",
        "multi_users_select",
        "number_input",
        "overflow",
        "plain_text_input",
        "radio_buttons",
        "rich_text_input",
        "channels_select",
        "conversations_select",
        "external_select",
        "static_select",
        "users_select",
        "timepicker",
        "url_text_input",
        "workflow_button",
    }
)


class _Checker:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def error(self, pointer: str, message: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{pointer}]")

    def max_len(self, value: Any, limit: int, pointer: str) -> None:
        if isinstance(value, str) and len(value) > limit:
            self.error(pointer, f"must be less than {limit + 1} characters")

    def text_object(
        self,
        obj: Any,
        pointer: str,
        *,
        limit: int,
        plain_only: bool = False,
        required: bool = True,
    ) -> None:
        if obj is None:
            if required:
                self.error(pointer, "missing required field: text")
            return
        if not isinstance(obj, dict):
            self.error(pointer, "must be a text object")
            return
        kind = obj.get("type")
        allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
        if kind not in allowed:
            self.error(f"{pointer}/type", f"must be one of {', '.join(allowed)}")
        text = obj.get("text")
        if not isinstance(text, str) or not text:
            self.error(f"{pointer}/text", "must be more than 0 characters")
            return
        self.max_len(text, limit, f"{pointer}/text")

    def confirm(self, obj: Any, pointer: str) -> None:
        if obj is None:
            return
        if not isinstance(obj, dict):
            self.error(pointer, "must be a confirmation dialog object")
            return
        self.text_object(obj.get("title"), f"{pointer}/title", limit=100, plain_only=True)
        self.text_object(obj.get("text"), f"{pointer}/text", limit=300)
        self.text_object(obj.get("confirm"), f"{pointer}/confirm", limit=30, plain_only=True)
        self.text_object(obj.get("deny"), f"{pointer}/deny", limit=30, plain_only=True)

    def options(self, options: Any, pointer: str) -> None:
        if options is None:
            return
        if not isinstance(options, list):
            self.error(pointer, "must be an array")
            return
        if len(options) > MAX_OPTIONS:
            self.error(pointer, f"no more than {MAX_OPTIONS} items allowed")
        for i, option in enumerate(options):
            where = f"{pointer}/{i}"
            if not isinstance(option, dict):
                self.error(where, "must be an option object")
                continue
            self.text_object(option.get("text"), f"{where}/text", limit=MAX_OPTION_TEXT)
            self.max_len(option.get("value"), MAX_OPTION_VALUE, f"{where}/value")

    def element(self, element: Any, pointer: str) -> None:
        if not isinstance(element, dict):
            self.error(pointer, "must be an element object")
            return
        kind = element.get("type")
        if kind not in INTERACTIVE_ELEMENTS:
            self.error(f"{pointer}/type", f"unsupported type: {kind}")
            return
        self.max_len(element.get("action_id"), MAX_ID, f"{pointer}/action_id")
        self.confirm(element.get("confirm"), f"{pointer}/confirm")
        if "placeholder" in element:
            self.text_object(element["placeholder"], f"{pointer}/placeholder", limit=MAX_PLACEHOLDER, plain_only=True)
        if kind == "button":
            self.text_object(element.get("text"), f"{pointer}/text", limit=MAX_BUTTON_TEXT, plain_only=True)
            self.max_len(element.get("value"), MAX_BUTTON_VALUE, f"{pointer}/value")
            self.max_len(element.get("url"), MAX_URL, f"{pointer}/url")
            style = element.get("style")
            if style is not None and style not in ("primary", "danger"):
                self.error(f"{pointer}/style", "must be one of primary, danger")
        elif kind == "image":
            self.max_len(element.get("image_url"), MAX_URL, f"{pointer}/image_url")
            if "alt_text" not in element:
                self.error(f"{pointer}/alt_text", "missing required field: alt_text")
        self.options(element.get("options"), f"{pointer}/options")
        groups = element.get("option_groups")
        if isinstance(groups, list):
            for i, group in enumerate(groups):
                if isinstance(group, dict):
                    self.options(group.get("options"), f"{pointer}/option_groups/{i}/options")

    def context_element(self, element: Any, pointer: str) -> None:
        if isinstance(element, dict) and element.get("type") in ("plain_text", "mrkdwn"):
            self.text_object(element, pointer, limit=MAX_SECTION_TEXT)
        elif isinstance(element, dict) and element.get("type") == "image":
            self.max_len(element.get("image_url"), MAX_URL, f"{pointer}/image_url")
        else:
            self.error(pointer, "must be a text or image element")

    def block(self, block: Any, pointer: str) -> None:
        if not isinstance(block, dict):
            self.error(pointer, "must be a block object")
            return
        kind = block.get("type")
        if kind not in BLOCK_TYPES:
            self.error(f"{pointer}/type", f"unsupported type: {kind}")
            return
        self.max_len(block.get("block_id"), MAX_ID, f"{pointer}/block_id")
        if kind == "section":
            text, fields = block.get("text"), block.get("fields")
            if text is None and not fields:
                self.error(pointer, "must provide either text or fields")
            if text is not None:
                self.text_object(text, f"{pointer}/text", limit=MAX_SECTION_TEXT)
            if fields is not None:
                if not isinstance(fields, list):
                    self.error(f"{pointer}/fields", "must be an array")
                else:
                    if len(fields) > MAX_SECTION_FIELDS:
                        self.error(f"{pointer}/fields", f"no more than {MAX_SECTION_FIELDS} items allowed")
                    for i, item in enumerate(fields):
                        self.text_object(item, f"{pointer}/fields/{i}", limit=MAX_FIELD_TEXT)
            if "accessory" in block:
                self.element(block["accessory"], f"{pointer}/accessory")
        elif kind == "header":
            self.text_object(block.get("text"), f"{pointer}/text", limit=MAX_HEADER_TEXT, plain_only=True)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.error(f"{pointer}/elements", "must provide at least 1 element")
                return
            if len(elements) > MAX_ACTIONS_ELEMENTS:
                self.error(f"{pointer}/elements", f"no more than {MAX_ACTIONS_ELEMENTS} items allowed")
            for i, element in enumerate(elements):
                self.element(element, f"{pointer}/elements/{i}")
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements:
                self.error(f"{pointer}/elements", "must provide at least 1 element")
                return
            if len(elements) > MAX_CONTEXT_ELEMENTS:
                self.error(f"{pointer}/elements", f"no more than {MAX_CONTEXT_ELEMENTS} items allowed")
            for i, element in enumerate(elements):
                self.context_element(element, f"{pointer}/elements/{i}")
        elif kind == "input":
            self.text_object(block.get("label"), f"{pointer}/label", limit=MAX_LABEL, plain_only=True)
            if "hint" in block:
                self.text_object(block["hint"], f"{pointer}/hint", limit=MAX_LABEL, plain_only=True)
            if "element" not in block:
                self.error(f"{pointer}/element", "missing required field: element")
            else:
                self.element(block["element"], f"{pointer}/element")
        elif kind == "image":
            self.max_len(block.get("image_url"), MAX_URL, f"{pointer}/image_url")
            self.max_len(block.get("alt_text"), MAX_LABEL, f"{pointer}/alt_text")
            if "title" in block:
                self.text_object(block["title"], f"{pointer}/title", limit=MAX_LABEL, plain_only=True)
        elif kind == "markdown":
            self.max_len(block.get("text"), 12_000, f"{pointer}/text")

    def blocks(self, blocks: list[Any], pointer: str, *, limit: int) -> None:
        if len(blocks) > limit:
            self.error(pointer, f"no more than {limit} items allowed")
        for i, block in enumerate(blocks):
            self.block(block, f"{pointer}/{i}")


def check_message_blocks(blocks: Any) -> None:
    """Raise ``invalid_blocks_format`` / ``invalid_blocks`` unless ``blocks`` fits in a message."""
    if blocks is None:
        return
    if not isinstance(blocks, list):
        raise SlackApiFailure("invalid_blocks_format", "[ERROR] must be an array [json-pointer:/blocks]")
    checker = _Checker()
    checker.blocks(blocks, "/blocks", limit=MAX_MESSAGE_BLOCKS)
    if checker.errors:
        raise SlackApiFailure("invalid_blocks", *checker.errors)


def check_message_text(text: Any) -> None:
    if isinstance(text, str) and len(text) > MAX_MESSAGE_TEXT:
        raise SlackApiFailure("msg_too_long")


def check_view(view: Any) -> None:
    """Raise ``invalid_arguments`` unless ``view`` is a valid modal/home view, like views.open."""
    if not isinstance(view, dict):
        raise SlackApiFailure("invalid_arguments", "[ERROR] must be an object [json-pointer:/view]")
    checker = _Checker()
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.error("/view/type", "must be one of modal, home")
    if kind == "modal":
        checker.text_object(view.get("title"), "/view/title", limit=MAX_VIEW_TITLE, plain_only=True)
    for key in ("submit", "close"):
        if key in view:
            checker.text_object(view[key], f"/view/{key}", limit=MAX_VIEW_BUTTON, plain_only=True)
    checker.max_len(view.get("private_metadata"), MAX_PRIVATE_METADATA, "/view/private_metadata")
    checker.max_len(view.get("callback_id"), MAX_ID, "/view/callback_id")
    checker.max_len(view.get("external_id"), MAX_ID, "/view/external_id")
    blocks = view.get("blocks")
    if not isinstance(blocks, list):
        checker.error("/view/blocks", "must be an array")
    else:
        checker.blocks(blocks, "/view/blocks", limit=MAX_VIEW_BLOCKS)
        has_inputs = any(isinstance(b, dict) and b.get("type") == "input" for b in blocks)
        if kind == "modal" and has_inputs and "submit" not in view:
            checker.error("/view/submit", "must provide a submit button when the view has input blocks")
    if checker.errors:
        raise SlackApiFailure("invalid_arguments", *checker.errors)
