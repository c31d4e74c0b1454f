"""The artifact store: the only module that touches storage.

Every artifact is written through Django's storage API (STORAGES["artifacts"]) under a
content-addressed path. A manifest lists each artifact with its SHA256 and size plus the
training environment; the SHA256 of the canonical manifest is the version's `model_sha256`.
Loading checks the manifest against the registry, the environment, and every file's hash
before anything is unpickled.
"""

import hashlib
import io
import json
import platform
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import joblib
import numpy
import pandas
import sklearn
from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import storages

from core.errors import ApplicationError, ModelIntegrityError

MANIFEST_FORMAT = 1
OBJECT_PREFIX = "objects"
MANIFEST_PREFIX = "manifests"
DATASET_PREFIX = "datasets"


class ArtifactIntegrityError(ModelIntegrityError):
    """A manifest or artifact does not match the registry, or a file is missing."""


class IncompatibleEnvironmentError(ApplicationError):
    code = "incompatible_environment"
    http_status = 503


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
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
        "code_commit": code_commit(),
    }


def _minor(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:2])


def manifest_name(model_sha256: str) -> str:
    """Where a version's manifest is stored."""
    return f"{MANIFEST_PREFIX}/{model_sha256}.json"


def _object_name(data: bytes) -> str:
    digest = sha256_bytes(data)
    return f"{OBJECT_PREFIX}/{digest[:2]}/{digest}"


def _store(data: bytes) -> str:
    """Write bytes under their hash and return the storage name (deduplicated)."""
    name = _object_name(data)
    storage = artifact_storage()
    if not storage.exists(name):
        # A concurrent writer of the same content may win the race; storage then hands
        # back another free name, which is recorded as it is.
        name = storage.save(name, ContentFile(data))
    return name


def _serialize(value: Any, fmt: str) -> bytes:
    if fmt == "json":
        return canonical_json(value)
    buffer = io.BytesIO()
    joblib.dump(value, buffer)
    return buffer.getvalue()


def _manifest(objects: dict[str, Any], documents: dict[str, Any] | None, *, store) -> dict:
    entries = []
    items = [(name, value, "joblib") for name, value in objects.items()]
    items += [(name, value, "json") for name, value in (documents or {}).items()]
    for name, value, fmt in sorted(items, key=lambda item: item[0]):
        data = _serialize(value, fmt)
        entries.append({
            "name": name,
            "format": fmt,
            "path": store(data),
            "sha256": sha256_bytes(data),
            "size": len(data),
        })
    return {
        "format": MANIFEST_FORMAT,
        "artifacts": entries,
        "environment": training_environment(),
    }


def bundle_paths(*, objects: dict[str, Any], documents: dict[str, Any] | None = None) -> set[str]:
    """The storage names `bundle_save` will write for this bundle, manifest included.

    Writes nothing: a caller records them first, so that the files of a process that dies
    between the write and the commit of its version can be found and removed.
    """
    manifest = _manifest(objects, documents, store=_object_name)
    return manifest_paths(manifest) | {manifest_name(manifest_sha256(manifest))}


def bundle_save(*, objects: dict[str, Any],
                documents: dict[str, Any] | None = None) -> tuple[dict, str]:
    """Store a bundle; returns (manifest, model_sha256).

    `objects` are pickled with joblib (estimator, preprocessing); `documents` are plain JSON
    (reference profile, thresholds) and are never unpickled.
    """
    manifest = _manifest(objects, documents, store=_store)
    digest = manifest_sha256(manifest)
    name = manifest_name(digest)
    storage = artifact_storage()
    if not storage.exists(name):
        storage.save(name, ContentFile(canonical_json(manifest)))
    return manifest, digest


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

    Returns the verified bytes of each artifact, by name. Unpickles nothing.
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
    recorded = manifest.get("environment", {}).get("scikit-learn", "")
    if _minor(recorded) != _minor(sklearn.__version__):
        raise IncompatibleEnvironmentError(
            f"bundle was trained with scikit-learn {recorded}; this process runs "
            f"{sklearn.__version__} (minor versions must match)",
            details={"recorded": recorded, "running": sklearn.__version__},
        )


def bundle_load(*, manifest: dict, model_sha256: str) -> LoadedBundle:
    """Verify, then deserialize. Nothing is unpickled unless every check passed."""
    environment_check(manifest)
    verified = bundle_verify(manifest=manifest, model_sha256=model_sha256)
    formats = {entry["name"]: entry["format"] for entry in manifest["artifacts"]}
    objects = {
        name: json.loads(data) if formats[name] == "json" else joblib.load(io.BytesIO(data))
        for name, data in verified.items()
    }
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
