"""Admin features shared by the apps."""


class ReadOnlyAdminMixin:
    """Records written only by services (audit rows, logs, jobs): viewable, never edited
    or deleted in the admin."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
