"""Training: datasets, the trainer, training jobs, external registration (docs/training.md)."""
