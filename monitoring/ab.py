"""PLACEHOLDER: being written (issue 5)."""


def ab_evaluate_all(*, now=None) -> list:
    raise NotImplementedError
