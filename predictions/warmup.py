"""Warm start (docs/deploy.md#warm-start): a serving process loads every live version before it
accepts a request, so its first request loads nothing and costs what its hundredth does."""

import logging

from django.db import DatabaseError, connections

from core.errors import ApplicationError
from core.logging import exception_outline
from predictions.loader import model_cache
from predictions.services import version_hooks

logger = logging.getLogger("pulselytics.predictions")


def live_versions_warm() -> dict[str, str]:
    """Load every live version of every model (champions, challengers, shadows) into this
    process's cache: artifacts verified, explainer and inference path built, and the hooks
    its predictions run. Per version ("<model> <version>"): "ready" or why it is not. One
    that fails is logged and the others still load; reading the registry may raise."""
    report = {}
    for live in model_cache.live_versions():
        label = f"{live.model_name} {live.version}"
        try:
            model_cache.served(live)
            version_hooks(recipe_name=live.recipe)
        except Exception as exc:  # noqa: BLE001 - one broken version must not stop the rest
            report[label] = exc.message if isinstance(exc, ApplicationError) else repr(exc)
            logger.warning("warm start: a live version did not load",
                           extra={"model": live.model_name, "version": live.version,
                                  "exception": exception_outline(exc)})
        else:
            report[label] = "ready"
    return report


def serving_process_warm() -> None:
    """Warm this serving process (pulselytics/wsgi.py, as each gunicorn worker loads the app).
    It never stops the process from starting: with the database unreachable nothing is
    loaded, and /ready and the first requests load what they need once it answers."""
    try:
        report = live_versions_warm()
    except DatabaseError as exc:
        logger.error("warm start skipped: the registry could not be read",
                     extra={"exception": exception_outline(exc)})
    else:
        not_ready = sorted(label for label, reason in report.items() if reason != "ready")
        logger.info("warm start done", extra={"versions": len(report), "not_ready": not_ready})
    finally:
        # Under gunicorn --preload this runs before the fork: no worker may inherit (and
        # share) this process's database connections.
        connections.close_all()
