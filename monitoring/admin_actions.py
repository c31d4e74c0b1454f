"""Monitoring's actions on the version admin: promote the winner of an A/B test, promote a
shadow that its evaluation found better.

Registered with the registry's version admin from MonitoringConfig.ready(), so the
registry never imports monitoring (docs/architecture.md). monitoring.ab is imported by the
action's steps, not with this module: it brings scikit-learn and scipy (through
monitoring.performance and monitoring.significance), as does monitoring.shadow, and every
process imports this module
at start-up.
"""

from django.contrib.auth.models import AbstractBaseUser

from mlregistry import forms, selectors
from mlregistry.admin_actions import VersionAction
from mlregistry.models import MLModelVersion
from monitoring.models import ABEvaluation


def _promote_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    from monitoring import ab  # noqa: PLC0415 - see the module docstring

    ab.ab_promote_check(model_name=version.model.name, user=user, challenger=version)


def _promote_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    from monitoring import ab  # noqa: PLC0415 - see the module docstring

    evaluation = ab.ab_promote_check(model_name=version.model.name, user=user,
                                     challenger=version)
    champion = evaluation.champion.version
    if evaluation.verdict == ABEvaluation.Verdict.CHALLENGER_BETTER:
        effect = (f"The challenger won: {version} becomes the champion with 100% of traffic and "
                  f"{champion} is archived.")
    else:
        effect = (f"The champion won: the test of {version} ends and {champion} keeps all "
                  "traffic.")
    return {"effect": effect, "evaluation": evaluation}


def _promote(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    from monitoring import ab  # noqa: PLC0415 - see the module docstring

    previous = selectors.model_production_version(model=version.model)
    winner = ab.ab_promote_winner(model_name=version.model.name, user=user, challenger=version)
    if winner.pk == version.pk:
        archived = f"; {previous.version} is archived" if previous is not None else ""
        return f"Promoted the A/B winner: {winner} is now champion with 100% of traffic{archived}."
    return f"The champion {winner.version} won the A/B test: the test of {version} ended."


PROMOTE_WINNER = VersionAction(
    "promote-winner", "Promote winner", forms.ConfirmForm, _promote_check, _promote_describe,
    _promote, extra_template="admin/monitoring/ab_evaluation_latest.html")


def _promote_shadow_check(*, version: MLModelVersion, user: AbstractBaseUser) -> None:
    from monitoring import shadow  # noqa: PLC0415 - see the module docstring

    shadow.shadow_promote_check(model_name=version.model.name, user=user, shadow=version)


def _promote_shadow_describe(version: MLModelVersion, user: AbstractBaseUser) -> dict:
    from monitoring import shadow  # noqa: PLC0415 - see the module docstring

    evaluation = shadow.shadow_promote_check(model_name=version.model.name, user=user,
                                             shadow=version)
    return {"effect": f"The shadow is better ({evaluation.reason}): {version} becomes the "
                      f"champion with 100% of traffic and {evaluation.champion.version} is "
                      "archived.", "evaluation": evaluation}


def _promote_shadow(version: MLModelVersion, user: AbstractBaseUser, data: dict) -> str:
    from monitoring import shadow  # noqa: PLC0415 - see the module docstring

    previous = selectors.model_production_version(model=version.model)
    winner = shadow.shadow_promote(model_name=version.model.name, user=user, shadow=version)
    archived = f"; {previous.version} is archived" if previous is not None else ""
    return f"Promoted the shadow: {winner} is now champion with 100% of traffic{archived}."


PROMOTE_SHADOW = VersionAction(
    "promote-shadow", "Promote shadow", forms.ConfirmForm, _promote_shadow_check,
    _promote_shadow_describe, _promote_shadow)
