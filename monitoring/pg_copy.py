"""A query's rows out of PostgreSQL as pandas frames of bounded size, through
`COPY (query) TO STDOUT` in the text format: the drift check's fast path
(docs/monitoring.md#drift).

The rows arrive as one text stream that pandas' C parser splits into columns, so no Python
object is made per number (numbers become float64 columns). Each text field is what
PostgreSQL prints for the value, with COPY's escapes (`\\t`, `\\n`, `\\\\`, ...) still in;
`\\N` is NULL. `copy_text_unescape` restores the printed text, which is needed only for
values kept as text (categories), one distinct value at a time.
"""

import csv
import io
import re
from collections.abc import Hashable, Iterable, Iterator
from itertools import islice

import numpy
import pandas
from django.db import connections
from django.db.models import QuerySet

NULL = "\\N"
# The escapes COPY TO writes in the text format (a backslash before any other character
# stands for that character).
_ESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)


def copy_text_unescape(text: str) -> str:
    """The value PostgreSQL printed, from its COPY text-format field."""
    if "\\" not in text:
        return text
    return _ESCAPE.sub(lambda match: _ESCAPES.get(match[1], match[1]), text)


class _CopyStream(io.RawIOBase):
    """The COPY data as a readable byte stream. PostgreSQL sends one row per message; they
    are joined `MESSAGES_PER_READ` at a time, in C, not one by one in Python."""

    MESSAGES_PER_READ = 4096

    def __init__(self, messages: Iterable) -> None:
        self.messages = iter(messages)
        self.pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self.pending:
            self.pending = memoryview(b"".join(islice(self.messages, self.MESSAGES_PER_READ)))
        taken = min(len(buffer), len(self.pending))
        buffer[:taken] = self.pending[:taken]
        self.pending = self.pending[taken:]
        return taken


def queryset_frames(*, queryset: QuerySet, names: list[Hashable], text_names: Iterable[Hashable],
                    chunk_rows: int) -> Iterator[pandas.DataFrame]:
    """The rows of `queryset` (a values_list with one expression per name), `chunk_rows`
    at a time. Columns in `text_names` hold the COPY text of each value (NaN for NULL);
    the others hold what pandas makes of the text: numbers where every field of the chunk
    parses as one, else the text (see `numbers`)."""
    sql, params = queryset.query.sql_with_params()
    statement = f"COPY ({sql}) TO STDOUT"
    with connections[queryset.db].cursor() as cursor, cursor.copy(statement, params) as copy:
        reader = pandas.read_csv(
            io.BufferedReader(_CopyStream(copy), 1 << 20), sep="\t", header=None,
            names=names, dtype=dict.fromkeys(text_names, object), quoting=csv.QUOTE_NONE,
            keep_default_na=False, na_values=[NULL], skip_blank_lines=False,
            chunksize=chunk_rows)
        yield from reader


def numbers(column: pandas.Series) -> numpy.ndarray:
    """A column of `queryset_frames` as floats, NaN where the text is not a number: what
    pandas.to_numeric(text, errors="coerce") gives for each field's printed text."""
    if column.dtype.kind in "fiu":
        return column.to_numpy(dtype=float, na_value=numpy.nan)
    if column.dtype.kind == "b":
        # read_csv turned true/false texts into bools; to_numeric makes NaN of those texts.
        return numpy.full(len(column), numpy.nan)
    texts = [numpy.nan if isinstance(text, bool) else
             copy_text_unescape(text) if isinstance(text, str) else text for text in column]
    return pandas.to_numeric(pandas.Series(texts, dtype=object), errors="coerce").to_numpy(
        dtype=float, na_value=numpy.nan)
