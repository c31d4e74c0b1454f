"""Evidence from apps above the registry on the version page (docs/architecture.md).

The registry cannot import monitoring, yet a reviewer deciding on a candidate needs what
monitoring knows about the version it would replace (live performance, live fairness, open
alerts). An app above the registry adds a panel from its ready() with
`version_evidence_panel_register`; the version's change view asks every panel for its
context and includes the panel's template where it answers.
"""

from collections.abc import Callable
from dataclasses import dataclass

from mlregistry.models import MLModelVersion


@dataclass(frozen=True)
class EvidencePanel:
    name: str
    template: str
    # The panel's template context for this version, or None when it has nothing to show.
    context: Callable[[MLModelVersion], dict | None]


PANELS: list[EvidencePanel] = []


def version_evidence_panel_register(panel: EvidencePanel) -> None:
    """Add a panel to the version page (idempotent: ready() may run more than once)."""
    if all(known.name != panel.name for known in PANELS):
        PANELS.append(panel)


def version_evidence_panels(*, version: MLModelVersion) -> list[dict]:
    """The panels that have something to show for this version, in registration order."""
    shown = []
    for panel in PANELS:
        context = panel.context(version)
        if context is not None:
            shown.append({"name": panel.name, "template": panel.template, "context": context})
    return shown
