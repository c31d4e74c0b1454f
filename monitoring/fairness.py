"""PLACEHOLDER: being written (issue 5)."""


def fairness_audit_all(*, now=None) -> list:
    raise NotImplementedError
