"""The one way a service checks a Django permission: a typed error that says which."""

from django.contrib.auth.models import AbstractBaseUser

from core.errors import PermissionDeniedError


def require_permission(user: AbstractBaseUser, permission: str, action: str) -> None:
    if not (user.is_active and user.has_perm(permission)):
        raise PermissionDeniedError(
            f"{user.get_username()} may not {action} (needs {permission})",
            details={"permission": permission},
        )
