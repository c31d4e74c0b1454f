"""`revoke_api_key NAME|PREFIX` (docs/operations.md#api-keys): a key named by its prefix, or
every active key of a name, stops working; nothing matching is a one-line failure."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from predictions import services
from predictions.models import ClientAPIKey

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_revoke_by_prefix_revokes_that_key_only():
    revoked, key = services.api_key_create(name="crm-sync")
    kept, _ = services.api_key_create(name="crm-sync")

    output = run("revoke_api_key", revoked.prefix)

    assert output.splitlines()[0] == f"revoked crm-sync (prefix {revoked.prefix})"
    assert ClientAPIKey.objects.get(pk=revoked.pk).revoked
    assert not ClientAPIKey.objects.get(pk=kept.pk).revoked
    assert not ClientAPIKey.objects.is_valid(key)


def test_revoke_by_name_revokes_every_active_key_of_that_name():
    first, _ = services.api_key_create(name="crm-sync")
    second, _ = services.api_key_create(name="crm-sync")
    other, _ = services.api_key_create(name="dashboard")

    output = run("revoke_api_key", "crm-sync")

    assert set(ClientAPIKey.objects.filter(revoked=True)) == {first, second}
    assert not ClientAPIKey.objects.get(pk=other.pk).revoked
    assert f"prefix {first.prefix}" in output and f"prefix {second.prefix}" in output
    assert output.splitlines()[-1].startswith("every server refuses it within")


def test_revoke_of_no_active_key_fails_with_not_found():
    services.api_key_create(name="crm-sync")
    run("revoke_api_key", "crm-sync")

    with pytest.raises(CommandError, match=r"^not_found: no active API key named or prefixed "
                                            r"'crm-sync'$"):
        run("revoke_api_key", "crm-sync")
