"""Admin features shared by the apps."""

import re
from datetime import datetime

from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime


class ReadOnlyAdminMixin:
    """Records written only by services (audit rows, logs, jobs): viewable, never edited
    or deleted in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# List cells that keep a changelist within a 1280 px window (core/static/core/admin/lists.css).
def list_cell_time(moment: datetime | None) -> str:
    """A time that may wrap between date and time but never inside either; "–" when it has
    not happened."""
    if moment is None:
        return "–"
    moment = localtime(moment)
    return format_html('<time class="list-when" datetime="{}"><span class="nowrap">{}</span> '
                       '<span class="nowrap">{}</span></time>', moment.isoformat(),
                       moment.strftime("%Y-%m-%d"), moment.strftime("%H:%M %Z"))


def _breakable(text: str, after: str) -> str:
    """`text` free to break after each of the characters `after`, where browsers do not break
    on their own (a name like bartholomew.lindqvist, a code like test_stopped_automatically)."""
    parts = re.split(f"(?<=[{re.escape(after)}])", text)
    return format_html_join(mark_safe("<wbr>"), "{}", ((part,) for part in parts))


def list_cell_who_when(user, moment: datetime | None) -> str:
    """Who did something over when: one narrow column instead of two wide ones."""
    if moment is None:
        return "–"
    return format_html("{}<br>{}", _breakable(str(user), "._@") if user else "–",
                       list_cell_time(moment))


def list_cell_code(code: str) -> str:
    """A code such as test_stopped_automatically, which may break after its underscores."""
    return _breakable(code, "_")


def list_cell_text(text: str) -> str:
    """Long free text (a message, notes) in full, wrapped at any point if it must."""
    return format_html('<div class="list-text">{}</div>', text) if text else "–"
