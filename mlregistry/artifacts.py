"""The artifact store: the only module that touches storage (docs/registry.md#artifacts).

Every artifact is written through Django's storage API (STORAGES["artifacts"]) under a
content-addressed path. A manifest lists each artifact with its SHA256 and size plus the
training environment and the types a reviewer trusted; the SHA256 of the canonical manifest
is the version's `model_sha256`. Loading checks the manifest against the registry, the
environment, and every file's hash before anything is deserialized.

Estimators are stored as skops files (`skops.io`), which load without running the code a
pickle can carry: a skops file names every type it holds, and loading refuses any type
that is neither trusted by policy (TRUSTED_TYPE_PREFIXES) nor trusted for this version by a
reviewer (`trusted_types` in the manifest). Versions registered before skops hold joblib
pickles ("joblib" entries); they still load, after the same verification, until
`migrate_artifacts` converts them.

joblib, skops (and with it every scikit-learn estimator module), scikit-learn and pandas are
imported by the functions that write, load or describe model files, not with this module:
every process imports it at start-up, and most never touch a model file.
"""

import hashlib
import io
import json
import platform
import subprocess
import zipfile
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages

from core.errors import ApplicationError, ModelIntegrityError

MANIFEST_FORMAT = 1
OBJECT_PREFIX = "objects"
MANIFEST_PREFIX = "manifests"
DATASET_PREFIX = "datasets"
SKOPS = "skops"
PICKLE = "joblib"  # the format of estimators registered before skops
# Types a skops file may hold without a reviewer: scikit-learn, numpy and scipy, and the
# platform's own recipe code (its transformers, detectors and feature functions).
TRUSTED_TYPE_PREFIXES = ("sklearn.", "numpy.", "scipy.", "core.ml.recipes.")


class ArtifactIntegrityError(ModelIntegrityError):
    """A manifest or artifact does not match the registry, or a file is missing."""


class IncompatibleEnvironmentError(ApplicationError):
    code = "incompatible_environment"
    http_status = 503


class UntrustedTypesError(ModelIntegrityError):
    """A model file holds types outside the trusted set that no reviewer trusted."""


@dataclass(frozen=True)
class PreparedBundle:
    """A bundle serialized once, not yet stored: its manifest and every file's bytes by
    storage name (the manifest's own file included). skops files are not byte-for-byte
    reproducible, so what is hashed is exactly what is written."""

    manifest: dict
    files: dict[str, bytes]

    @property
    def model_sha256(self) -> str:
        return manifest_sha256(self.manifest)

    @property
    def paths(self) -> set[str]:
        return set(self.files)


@dataclass(frozen=True)
class LoadedBundle:
    model_sha256: str
    manifest: dict
    objects: dict[str, Any] = field(default_factory=dict)

    @property
    def estimator(self) -> Any:
        return self.objects["estimator"]


def artifact_storage():
    return storages["artifacts"]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path | str, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def canonical_json(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def manifest_sha256(manifest: dict) -> str:
    return sha256_bytes(canonical_json(manifest))


def code_commit() -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=settings.BASE_DIR, capture_output=True,
            text=True, timeout=5, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


def training_environment() -> dict:
    import numpy  # noqa: PLC0415 - see the module docstring
    import pandas  # noqa: PLC0415
    import sklearn  # noqa: PLC0415
    import skops  # noqa: PLC0415

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "skops": skops.__version__,
        "code_commit": code_commit(),
    }


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def manifest_name(model_sha256: str) -> str:
    """Where a version's manifest is stored."""
    return f"{MANIFEST_PREFIX}/{model_sha256}.json"


def object_name(data: bytes) -> str:
    """The content-addressed storage name of `data`."""
    digest = sha256_bytes(data)
    return f"{OBJECT_PREFIX}/{digest[:2]}/{digest}"


def type_trusted_by_policy(type_name: str) -> bool:
    return type_name.startswith(TRUSTED_TYPE_PREFIXES)


def types_needing_review(manifest: dict) -> list[str]:
    """Types the manifest's skops files hold that neither policy nor a reviewer trusted."""
    trusted = set(manifest.get("trusted_types", []))
    return sorted({name for entry in manifest.get("artifacts", [])
                   for name in entry.get("types", [])
                   if not type_trusted_by_policy(name) and name not in trusted})


def manifest_holds_pickles(manifest: dict) -> bool:
    """Whether any artifact is a pickle (a version registered before skops)."""
    return any(entry.get("format") == PICKLE for entry in manifest.get("artifacts", []))


def _entry(name: str, fmt: str, data: bytes, **extra: Any) -> dict:
    return {"name": name, "format": fmt, "path": object_name(data),
            "sha256": sha256_bytes(data), "size": len(data), **extra}


def _manifest(*, entries: list[dict], trusted_types: list[str], environment: dict) -> dict:
    return {
        "format": MANIFEST_FORMAT,
        "artifacts": sorted(entries, key=lambda entry: entry["name"]),
        "environment": environment,
        "trusted_types": sorted(set(trusted_types)),
    }


def bundle_prepare(*, objects: dict[str, Any], documents: dict[str, Any] | None = None,
                   trust_found_types: bool = False) -> PreparedBundle:
    """Serialize a bundle once: `objects` (estimator) as skops files, each listing the types it
    holds beyond skops' own defaults; `documents` (reference profile) as plain JSON.
    `trust_found_types` trusts every type found outside the policy (only for a pickle that was
    approved as a whole, converted by `migrate_artifacts`). Writes nothing: a caller may record
    the paths first, so that the files of a process that dies between the write and the commit of
    its version can be found and removed."""
    import skops.io  # noqa: PLC0415 - see the module docstring

    entries, files = [], {}
    for name, value in objects.items():
        data = skops.io.dumps(value, compression=zipfile.ZIP_DEFLATED)
        entries.append(_entry(name, SKOPS, data,
                              types=sorted(skops.io.get_untrusted_types(data=data))))
        files[entries[-1]["path"]] = data
    for name, value in (documents or {}).items():
        data = canonical_json(value)
        entries.append(_entry(name, "json", data))
        files[entries[-1]["path"]] = data
    outside_policy = {name for entry in entries for name in entry.get("types", [])
                      if not type_trusted_by_policy(name)}
    manifest = _manifest(entries=entries, environment=training_environment(),
                         trusted_types=sorted(outside_policy) if trust_found_types else [])
    files[manifest_name(manifest_sha256(manifest))] = canonical_json(manifest)
    return PreparedBundle(manifest=manifest, files=files)


def manifest_trusting(*, manifest: dict, trusted_types: list[str]) -> PreparedBundle:
    """The same artifact files under a manifest that also trusts `trusted_types`; only the
    new manifest is to be written (the artifact files are stored already)."""
    trusting = _manifest(entries=manifest["artifacts"],
                         trusted_types=[*manifest.get("trusted_types", []), *trusted_types],
                         environment=manifest.get("environment", {}))
    return PreparedBundle(manifest=trusting, files={
        manifest_name(manifest_sha256(trusting)): canonical_json(trusting)})


def bundle_save(bundle: PreparedBundle) -> None:
    """Store a prepared bundle's files under their content-addressed names (deduplicated)."""
    storage = artifact_storage()
    for name, data in bundle.files.items():
        if not storage.exists(name):
            # A concurrent writer of the same content may win the race; storage then keeps
            # this copy under another name, an orphan that clean-up removes.
            storage.save(name, ContentFile(data))


def dataset_store(*, path: Path, sha256: str, suffix: str) -> str:
    """Store a training file under its content hash; returns the storage name."""
    name = f"{DATASET_PREFIX}/{sha256}{suffix}"
    storage = artifact_storage()
    if storage.exists(name):
        return name
    with open(path, "rb") as handle:
        return storage.save(name, File(handle))


def dataset_read(*, storage_path: str, sha256: str) -> bytes:
    """A stored training file's bytes, checked against the hash it was registered under."""
    data = _read(storage_path)
    if sha256_bytes(data) != sha256:
        raise ArtifactIntegrityError(
            f"dataset file {storage_path} does not match its SHA256", details={"path": storage_path}
        )
    return data


def _read(path: str) -> bytes:
    storage = artifact_storage()
    try:
        with storage.open(path, "rb") as handle:
            return handle.read()
    except (FileNotFoundError, OSError) as exc:
        raise ArtifactIntegrityError(
            f"artifact file {path} is missing", details={"path": path}
        ) from exc


def bundle_verify(*, manifest: dict, model_sha256: str) -> dict[str, bytes]:
    """Check the manifest against the registry hash and every file against the manifest.

    Returns the verified bytes of each artifact, by name. Deserializes nothing.
    """
    actual = manifest_sha256(manifest)
    if actual != model_sha256:
        raise ArtifactIntegrityError(
            f"manifest hash {actual[:12]} does not match registry model_sha256 {model_sha256[:12]}",
            details={"expected": model_sha256, "actual": actual},
        )
    verified = {}
    for entry in manifest.get("artifacts", []):
        data = _read(entry["path"])
        digest = sha256_bytes(data)
        if digest != entry["sha256"] or len(data) != entry["size"]:
            raise ArtifactIntegrityError(
                f"artifact {entry['name']} ({entry['path']}) does not match its SHA256",
                details={"artifact": entry["name"], "path": entry["path"],
                         "expected": entry["sha256"], "actual": digest},
            )
        verified[entry["name"]] = data
    return verified


def environment_check(manifest: dict) -> None:
    import sklearn  # noqa: PLC0415 - see the module docstring

    recorded = manifest.get("environment", {}).get("scikit-learn", "")
    if _minor(recorded) != _minor(sklearn.__version__):
        raise IncompatibleEnvironmentError(
            f"bundle was trained with scikit-learn {recorded}; this process runs "
            f"{sklearn.__version__} (minor versions must match)",
            details={"recorded": recorded, "running": sklearn.__version__},
        )


def _skops_load(*, name: str, data: bytes, manifest: dict) -> Any:
    import skops.io  # noqa: PLC0415 - see the module docstring

    found = skops.io.get_untrusted_types(data=data)
    trusted = set(manifest.get("trusted_types", []))
    refused = sorted(t for t in found if not type_trusted_by_policy(t) and t not in trusted)
    if refused:
        raise UntrustedTypesError(
            f"artifact {name} holds types no reviewer trusted: {', '.join(refused)}",
            details={"artifact": name, "untrusted_types": refused})
    return skops.io.loads(data, trusted=found)


def _deserialize(*, name: str, fmt: str, data: bytes, manifest: dict) -> Any:
    if fmt == "json":
        return json.loads(data)
    if fmt == SKOPS:
        return _skops_load(name=name, data=data, manifest=manifest)
    # A pickle of a version registered before skops: its bytes were just verified against
    # the sealed model_sha256, so they are exactly what was approved.
    import joblib  # noqa: PLC0415 - see the module docstring

    return joblib.load(io.BytesIO(data))


def bundle_objects(bundle: PreparedBundle, *, also_trusted: list[str] = ()) -> dict[str, Any]:
    """Deserialize a prepared bundle's files, under the same trust rules as `bundle_load`
    plus `also_trusted` (to check a conversion before anything is stored)."""
    manifest = {**bundle.manifest, "trusted_types": [*bundle.manifest["trusted_types"],
                                                     *also_trusted]}
    return {entry["name"]: _deserialize(name=entry["name"], fmt=entry["format"],
                                        data=bundle.files[entry["path"]], manifest=manifest)
            for entry in bundle.manifest["artifacts"]}


def bundle_load(*, manifest: dict, model_sha256: str) -> LoadedBundle:
    """Verify, then deserialize. Nothing is deserialized unless every check passed, and a
    skops file only with every type it holds trusted."""
    environment_check(manifest)
    verified = bundle_verify(manifest=manifest, model_sha256=model_sha256)
    formats = {entry["name"]: entry["format"] for entry in manifest["artifacts"]}
    objects = {name: _deserialize(name=name, fmt=formats[name], data=data, manifest=manifest)
               for name, data in verified.items()}
    return LoadedBundle(model_sha256=model_sha256, manifest=manifest, objects=objects)


def manifest_paths(manifest: dict) -> set[str]:
    return {entry["path"] for entry in manifest.get("artifacts", [])}


def artifact_files_delete(*, paths: set[str]) -> int:
    storage = artifact_storage()
    deleted = 0
    for path in sorted(paths):
        if storage.exists(path):
            storage.delete(path)
            deleted += 1
    return deleted


def artifact_files_older_than(*, seconds: float) -> set[str]:
    """Stored artifact files last written more than `seconds` ago."""
    storage = artifact_storage()
    cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
    found = set()
    try:
        prefixes, _ = storage.listdir(OBJECT_PREFIX)
    except FileNotFoundError:
        return found
    for prefix in prefixes:
        _, files = storage.listdir(f"{OBJECT_PREFIX}/{prefix}")
        for name in files:
            path = f"{OBJECT_PREFIX}/{prefix}/{name}"
            if storage.get_modified_time(path) <= cutoff:
                found.add(path)
    return found
