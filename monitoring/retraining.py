"""PLACEHOLDER: being written (issue 5)."""


def retraining_check_all(*, now=None) -> list:
    raise NotImplementedError
