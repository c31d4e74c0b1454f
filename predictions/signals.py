"""What the serving app tells the apps above it, which connect in their ready()."""

from django.dispatch import Signal

# Sent by the model loader when it refuses to serve a live version (failed artifact
# verification, or an environment it cannot load in), with `model_name`, `version` and
# `error` (the ApplicationError saying why). Monitoring raises an integrity alert.
model_load_refused = Signal()
