"""What every management command shares: typed errors become one-line CommandErrors."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from core.errors import ApplicationError


class ApplicationCommand(BaseCommand):
    """Subclasses implement `run(**options)`; ApplicationErrors exit non-zero in one line."""

    def handle(self, *args, **options):
        try:
            return self.run(*args, **options)
        except ApplicationError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def user(self, username: str):
        """The active account `--user` names; anything else is refused before any work."""
        try:
            user = get_user_model().objects.get(username=username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"no user named {username!r}") from None
        if not user.is_active:
            raise CommandError(f"user {username!r} is not active")
        return user
