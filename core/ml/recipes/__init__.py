"""The recipe catalogue: settings.PULSELYTICS_RECIPES lists recipe classes by dotted path."""

from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

from core.errors import NotFoundError
from core.ml.recipes.base import LifecycleHooks, Recipe


class RecipeNotFoundError(NotFoundError):
    code = "recipe_not_found"


@cache
def _catalogue(paths: tuple[str, ...]) -> dict[str, Recipe]:
    recipes = [import_string(path)() for path in paths]
    return {recipe.name: recipe for recipe in recipes}


def recipes_all() -> dict[str, Recipe]:
    return _catalogue(tuple(settings.PULSELYTICS_RECIPES))


def recipe_get(name: str) -> Recipe:
    try:
        return recipes_all()[name]
    except KeyError:
        raise RecipeNotFoundError(
            f"no training recipe named {name!r}; known: {', '.join(sorted(recipes_all()))}",
            details={"recipe": name},
        ) from None


def lifecycle_hooks(recipe: Recipe | None) -> list[LifecycleHooks]:
    """The platform's hooks (settings.PULSELYTICS_LIFECYCLE_HOOKS), then the recipe's own.

    A model registered from outside (register_model) has no recipe: platform hooks only.
    """
    platform = [import_string(path)() for path in settings.PULSELYTICS_LIFECYCLE_HOOKS]
    return [*platform, recipe] if recipe is not None else platform
