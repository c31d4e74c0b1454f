"""Typed application errors: a stable machine-readable code and an HTTP status.

Services raise these; the API's one exception handler renders them as the docs/api.md#errors
envelope, management commands turn them into a one-line CommandError, admin actions into
an error message.
"""

from typing import Any


class ApplicationError(Exception):
    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details if details is not None else {}


class ValidationError(ApplicationError):
    code = "validation_error"
    http_status = 422


class InsufficientDataError(ValidationError):
    """Too few rows to train (docs/training.md#recipes minimum sample counts)."""

    code = "insufficient_data"


class NotFoundError(ApplicationError):
    code = "not_found"
    http_status = 404


class ModelNotFoundError(NotFoundError):
    code = "model_not_found"


class VersionNotFoundError(NotFoundError):
    code = "version_not_found"


class PredictionNotFoundError(NotFoundError):
    code = "prediction_not_found"


class PermissionDeniedError(ApplicationError):
    code = "permission_denied"
    http_status = 403


class FourEyesError(PermissionDeniedError):
    """The reviewer is the version's creator."""

    code = "four_eyes_violation"


class SeparationOfDutiesError(FourEyesError):
    """Under REQUIRE_SEPARATE_DEPLOYER, the deployer is the version's approver."""

    code = "separation_of_duties"


class ConflictError(ApplicationError):
    code = "conflict"
    http_status = 409


class IllegalTransitionError(ConflictError):
    code = "illegal_transition"


class GateFailedError(ConflictError):
    """A gate failed and no override justification was given."""

    code = "gate_failed"


class TrafficLimitError(ConflictError):
    code = "traffic_exceeded"


class RollbackUnavailableError(ConflictError):
    code = "rollback_unavailable"


class ArtifactNotTrustedError(ConflictError):
    """A version's model file is a pickle, or holds types no reviewer trusted yet."""

    code = "artifact_not_trusted"


class ModelIntegrityError(ApplicationError):
    code = "model_integrity_error"
    http_status = 503


class ModelNotReadyError(ApplicationError):
    code = "model_not_ready"
    http_status = 503


class DatabaseUnavailableError(ApplicationError):
    """The database cannot be reached (down, restarting): temporary, worth a retry."""

    code = "database_unavailable"
    http_status = 503


class FeedbackExistsError(ConflictError):
    code = "feedback_exists"


class BatchTooLargeError(ApplicationError):
    code = "batch_too_large"
    http_status = 413


class PayloadTooLargeError(ApplicationError):
    code = "payload_too_large"
    http_status = 413


class VersionNotServableError(ConflictError):
    """A pinned request names a version that is neither in staging nor in production."""

    code = "version_not_servable"


class VersionUnavailableError(ApplicationError):
    """The version that answered a prediction had its artifacts cleaned up: it can no
    longer be loaded (docs/registry.md#retention)."""

    code = "version_unavailable"
    http_status = 410


class QueryParameterError(ApplicationError):
    """A query parameter the operation does not take, or a value it cannot take
    (docs/api.md#query-parameters-bodies-and-methods)."""

    code = "invalid_query_parameter"
    http_status = 400
