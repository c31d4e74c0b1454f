"""PLACEHOLDER: being written (issue 5)."""


def drift_check_all(*, now=None) -> list:
    raise NotImplementedError
