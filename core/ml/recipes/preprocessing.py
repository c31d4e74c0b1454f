"""Preprocessing shared by the tabular recipes, fitted as the first step of their Pipeline.

Numbers are median-imputed, flags mode-imputed, the declared categories one-hot encoded
with unknown ones ignored. Output columns keep sklearn's `<transformer>__<feature>[_<cat>]`
names, so every column traces back to its source feature (the explain endpoint sums them).
The input is the canonical frame of core.ml.features.model_frame.
"""

from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder

from core.ml.recipes.base import Feature


def tabular_preprocessing(features: tuple[Feature, ...]) -> ColumnTransformer:
    """Median-impute numbers, mode-impute flags, one-hot the declared categories."""
    inputs = [feature for feature in features if feature.input]
    numeric = [f.name for f in inputs if f.dtype in ("float", "int")]
    flags = [f.name for f in inputs if f.dtype == "bool"]
    categorical = [f for f in inputs if f.dtype == "category"]
    return ColumnTransformer([
        ("numeric", SimpleImputer(strategy="median"), numeric),
        ("flag", SimpleImputer(strategy="most_frequent"), flags),
        ("category", OneHotEncoder(
            categories=[list(f.categories) for f in categorical], handle_unknown="ignore",
            sparse_output=False,
        ), [f.name for f in categorical]),
    ])
