"""Which lifecycle hooks serving calls around predictions (predictions.services.version_hooks)."""

from predictions.services import version_hooks


def test_only_hooks_that_act_on_predictions_are_called_around_them(settings):
    settings.PULSELYTICS_LIFECYCLE_HOOKS = [*settings.PULSELYTICS_LIFECYCLE_HOOKS,
                                            "tests.recipes.RecordingHook",
                                            "tests.recipes.ModelInputRecorder"]

    hooks = version_hooks(recipe_name="engagement-likes")

    # The platform's timing and logging hooks, RecordingHook and the recipe itself act on
    # training only: calling them would build a DataFrame for nothing.
    assert [type(hook).__name__ for hook in hooks] == ["ModelInputRecorder"]
