"""Running management commands in tests as an operator would, reading what they print."""

from io import StringIO

from django.core.management import call_command


def command_output(*args) -> str:
    """What `manage.py ARGS` prints on stdout (a refusal raises CommandError)."""
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()
