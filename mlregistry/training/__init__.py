"""Old module paths kept for stored artifacts: training lives in the `training` app and the
recipes in `core.ml.recipes` (docs/architecture.md)."""
