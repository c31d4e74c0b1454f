"""The admin index's work lists (pulselytics/templates/admin/index.html): the versions
awaiting review, for those who may approve; the live A/B and shadow tests, for those who
may deploy."""

from django import template

from mlregistry import selectors
from mlregistry.model_card import gates_summary

register = template.Library()


@register.inclusion_tag("admin/mlregistry/worklists.html", takes_context=True)
def registry_worklists(context) -> dict:
    user = context["request"].user
    awaiting = live = None
    if user.has_perm("mlregistry.approve_mlmodelversion"):
        awaiting = [{"version": version,
                     "gates": gates_summary(version.gate_results,
                                            override_justification=version.override_justification)}
                    for version in selectors.versions_awaiting_review()]
    if user.has_perm("mlregistry.deploy_mlmodelversion"):
        live = selectors.versions_in_live_test()
    return {"awaiting_review": awaiting, "live_tests": live}
