"""PLACEHOLDER: being written (issue 5)."""


def slo_check_all(*, now=None) -> list:
    raise NotImplementedError
