"""What every management command shares: typed errors become one-line CommandErrors, and
the audit trail learns which OS user on which host ran the command."""

import getpass
import socket
from contextvars import ContextVar

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError

# (OS user, host) while a command runs; the registry writes them into its audit rows.
command_origin: ContextVar[tuple[str, str] | None] = ContextVar("command_origin", default=None)


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a passwd entry (some containers)
        return "unknown"


class ApplicationCommand(BaseCommand):
    """Subclasses implement `run(**options)`; ApplicationErrors exit non-zero in one line."""

    def handle(self, *args, **options):
        token = command_origin.set((_os_user(), socket.gethostname()))
        try:
            return self.run(*args, **options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc
        finally:
            command_origin.reset(token)

    def user(self, username: str):
        """The active account `--user` names; anything else is refused before any work."""
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is not active")
        return user
