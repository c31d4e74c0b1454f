"""PLACEHOLDER: being written (issue 5)."""


def performance_evaluate_all(*, now=None) -> list:
    raise NotImplementedError
