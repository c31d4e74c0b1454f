"""Training datasets are files (CSV or Parquet), identified by the SHA256 of their bytes.

No database access. A file is read once; the hash and the frame come from the same bytes.
Registered datasets live in the artifact store (training.services).
"""

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from core.errors import ValidationError
from mlregistry import artifacts

if TYPE_CHECKING:
    import pandas

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


@dataclass(frozen=True, eq=False)
class Dataset:
    frame: "pandas.DataFrame"
    sha256: str
    path: str
    format: str


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _parse(data: bytes, fmt: str, name: str) -> "pandas.DataFrame":
    # Imported here: every process imports this module at start-up, few read a dataset.
    import pandas  # noqa: PLC0415

    try:
        if fmt == "csv":
            return pandas.read_csv(io.BytesIO(data))
        return pandas.read_parquet(io.BytesIO(data))
    except (OSError, ValueError) as exc:  # parser, encoding and Arrow errors are ValueErrors
        raise ValidationError(f"cannot read dataset {name} as {fmt}: {_one_line(exc)}",
                              details={"path": name}) from exc


def dataset_load_stored(*, storage_path: str, sha256: str, format: str) -> "pandas.DataFrame":
    """A registered dataset from the artifact store, verified against its hash."""
    return _parse(artifacts.dataset_read(storage_path=storage_path, sha256=sha256), format,
                  storage_path)


def dataset_load(path: str | Path) -> Dataset:
    """Read a CSV (.csv) or Parquet (.parquet, .pq) file; anything else is a ValidationError."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValidationError(
            f"cannot read dataset {path.name}: unknown extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(FORMATS)}",
            details={"path": str(path)},
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        reason = "no such file" if isinstance(exc, FileNotFoundError) else _one_line(exc)
        raise ValidationError(f"cannot read dataset {path}: {reason}",
                              details={"path": str(path)}) from exc
    frame = _parse(data, fmt, str(path))
    return Dataset(frame=frame, sha256=hashlib.sha256(data).hexdigest(), path=str(path), format=fmt)
