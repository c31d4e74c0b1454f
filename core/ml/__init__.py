"""The ML contracts every app shares. Pure: no database access, no app imports.

kinds.py (task kinds: primary metric and its direction, live A/B metric, outputs),
schema.py and features.py (feature schema, model frames), profile.py (reference
profiles and their bins), outputs.py (model outputs, label coercion), metrics.py
(validation metrics), fairness.py, gates.py (validation and fairness gates),
explain/ (SHAP explainers), importance.py (global importance), recipes/ (the recipe
interface, the built-in recipes and the catalogue).
"""
