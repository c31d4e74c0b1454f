"""The audit chain becomes keyed and binds what each version is (mlregistry/audit.py).

New columns hold what a row binds (model_sha256, dataset, schema and gates hashes, shadow
flag, the model's identity), who ran a command (OS user, host) and the sealing key's id; a
row may now be about the model itself (no version). Existing chains are
first checked as they were (plain SHA-256 links); an intact chain is then sealed row by row
with HMAC-SHA256 under the current audit key, binding each version as it is now. A chain
that was already broken is left unsealed (empty key id), so verify_audit keeps reporting it.
"""

import hashlib
import json
from datetime import UTC

import django.db.models.deletion
from django.db import migrations, models

from mlregistry import audit


def _legacy_sha256(row, version) -> str:
    content = {
        "model_id": row.model_id, "version_id": row.version_id, "version": version.version,
        "sequence": row.sequence, "actor_id": row.actor_id,
        "created_at": row.created_at.astimezone(UTC).isoformat(),
        "from_status": row.from_status, "to_status": row.to_status, "notes": row.notes,
        "reason": row.reason, "traffic_before": row.traffic_before,
        "traffic_after": row.traffic_after, "previous_sha256": row.previous_sha256,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def _legacy_chain_intact(rows, versions) -> bool:
    previous = ""
    for number, row in enumerate(rows, start=1):
        if (row.sequence != number or row.previous_sha256 != previous
                or _legacy_sha256(row, versions[row.version_id]) != row.row_sha256):
            return False
        previous = row.row_sha256
    return True


def seal(apps, schema_editor):
    model_table = apps.get_model("mlregistry", "MLModel")
    version_table = apps.get_model("mlregistry", "MLModelVersion")
    transition_table = apps.get_model("mlregistry", "ModelTransition")
    key_id, key = audit.current_key()
    names = dict(model_table.objects.values_list("pk", "name"))
    for model in model_table.objects.order_by("pk"):
        versions = {v.pk: v for v in version_table.objects.filter(model_id=model.pk)}
        rows = list(transition_table.objects.filter(model_id=model.pk).order_by("sequence"))
        if not _legacy_chain_intact(rows, versions):
            continue
        # As transitions.model_identity_sha256 computes it.
        identity = audit.json_sha256({
            "name": model.name, "task": model.task, "client_id": model.client_id,
            "global_model": names.get(model.global_model_id), "description": model.description})
        previous = ""
        for row in rows:
            version = versions[row.version_id]
            row.model_sha256 = version.model_sha256
            row.dataset_sha256 = version.training_dataset_sha256
            row.schema_sha256 = audit.json_sha256(version.feature_schema)
            row.gates_sha256 = audit.json_sha256(version.gate_results)
            row.is_shadow = version.is_shadow and row.to_status == "staging"
            row.identity_sha256 = identity
            row.key_id = key_id
            row.previous_sha256 = previous
            content = audit.transition_content(
                model_id=row.model_id, version_id=row.version_id, version=version.version,
                sequence=row.sequence, actor_id=row.actor_id, created_at=row.created_at,
                from_status=row.from_status, to_status=row.to_status, notes=row.notes,
                reason=row.reason, traffic_before=row.traffic_before,
                traffic_after=row.traffic_after, previous_sha256=previous,
                model_sha256=row.model_sha256, dataset_sha256=row.dataset_sha256,
                schema_sha256=row.schema_sha256, gates_sha256=row.gates_sha256,
                is_shadow=row.is_shadow, identity_sha256=identity, os_user="", host="",
                key_id=key_id)
            row.row_sha256 = audit.content_seal(content, key)
            previous = row.row_sha256
        # Historical models have no custom save(): a bulk update writes the rows as sealed.
        transition_table.objects.bulk_update(rows, [
            "model_sha256", "dataset_sha256", "schema_sha256", "gates_sha256", "is_shadow",
            "identity_sha256", "key_id", "previous_sha256", "row_sha256"])


class Migration(migrations.Migration):

    dependencies = [
        ("mlregistry", "0010_model_identity_fixed"),
    ]

    operations = [
        migrations.AddField(model_name="modeltransition", name="model_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="modeltransition", name="dataset_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="modeltransition", name="schema_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="modeltransition", name="gates_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AddField(model_name="modeltransition", name="is_shadow",
                            field=models.BooleanField(default=False)),
        migrations.AddField(model_name="modeltransition", name="identity_sha256",
                            field=models.CharField(blank=True, max_length=64)),
        migrations.AlterField(
            model_name="modeltransition", name="version",
            field=models.ForeignKey(blank=True, null=True,
                                    on_delete=django.db.models.deletion.PROTECT,
                                    related_name="transitions", to="mlregistry.mlmodelversion")),
        migrations.AddField(model_name="modeltransition", name="os_user",
                            field=models.CharField(blank=True, max_length=150)),
        migrations.AddField(model_name="modeltransition", name="host",
                            field=models.CharField(blank=True, max_length=255)),
        migrations.AddField(model_name="modeltransition", name="key_id",
                            field=models.CharField(blank=True, max_length=64)),
        # Sealing is one way: the plain chain it replaced cannot be restored.
        migrations.RunPython(seal, migrations.RunPython.noop),
    ]
