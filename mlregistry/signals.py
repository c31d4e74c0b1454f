"""What the registry tells the apps above it, which connect in their ready()
(docs/architecture.md#talking-upwards)."""

from django.dispatch import Signal

# Sent once the transaction that appended a sealed audit row (a ModelTransition) has
# committed, with `transition_id`; never for a row whose transaction rolled back.
# Monitoring delivers each row as a registry event and mails reviewers when a version
# awaits review.
transition_sealed = Signal()
