"""Where a retrain reads its labelled predictions from.

The prediction log belongs to the serving app, which sits above training
(docs/architecture.md). The app that asks for retrains on feedback (monitoring) registers
a reader here in its ready(), so training never imports serving.
"""

from collections.abc import Callable, Iterator
from typing import Any

from core.errors import ApplicationError

# model_name -> chunks of (features, actual, client_id, feedback source), oldest first in a
# fixed order.
FeedbackReader = Callable[..., Iterator[list[tuple[dict, Any, str, str]]]]

_readers: dict[str, FeedbackReader] = {}


class FeedbackUnavailableError(ApplicationError):
    code = "feedback_unavailable"


def feedback_reader_register(reader: FeedbackReader) -> None:
    _readers["labelled_predictions"] = reader


def feedback_reader() -> FeedbackReader | None:
    return _readers.get("labelled_predictions")


def feedback_chunks(*, model_name: str) -> Iterator[list[tuple[dict, Any, str, str]]]:
    reader = feedback_reader()
    if reader is None:
        raise FeedbackUnavailableError(
            "no reader of labelled predictions is registered (the monitoring app registers "
            "it when it is installed)")
    return reader(model_name=model_name)
