"""What the training app tells the apps above it, which connect in their ready()."""

from django.dispatch import Signal

# Sent by training.services when a training job has ended, succeeded or failed, with
# `job` (the TrainingJob). Monitoring follows up the retrains it asked for.
training_job_finished = Signal()
