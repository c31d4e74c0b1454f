"""A query's rows out of PostgreSQL as pandas frames of bounded size, through
`COPY (query) TO STDOUT` in the text format: the drift check's fast path
(docs/monitoring.md#drift).

The rows arrive as one text stream that pandas' C parser splits into columns, so no Python
object is made per number (numbers become float64 columns). Each text field is what
PostgreSQL prints for the value, with COPY's escapes (`\\t`, `\\n`, `\\\\`, ...) still in;
`\\N` is NULL. `copy_text_unescape` restores the printed text, which is needed only for
values kept as text (categories), one distinct value at a time.

The data is read from libpq directly (psycopg.pq), one message (row) after the other into
one growing buffer: psycopg's Copy runs a few Python generator steps per message, which
cost more CPU than pandas' parsing of them, and keeping libpq's messages for a join cost
twice that again (bench/RESULTS.md).
"""

import contextlib
import csv
import io
import re
import select
from collections.abc import Hashable, Iterable, Iterator

import numpy
import pandas
import psycopg
from django.db import connections
from django.db.models import QuerySet
from psycopg import pq

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
    """A started `COPY ... TO STDOUT` as a readable byte stream. The end of the data
    raises what the server reported, if anything went wrong."""

    def __init__(self, connection) -> None:
        self.pgconn = connection.pgconn
        self.encoding = connection.info.encoding
        self.pending = bytearray()
        self.ended = False  # the server's last row was read

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        pending = self.pending
        while len(pending) < len(buffer) and not self.ended:
            size, data = self.pgconn.get_copy_data(1)
            if size > 0:
                pending += data
            elif size == 0:
                # Nothing buffered: wait for the server. (libpq's own wait, a blocking
                # get_copy_data, would hold the GIL.)
                select.select([self.pgconn.socket], [], [])
                self.pgconn.consume_input()
            else:
                self.ended = True
                self._finish(size)
        taken = min(len(buffer), len(pending))
        with memoryview(pending) as view:
            buffer[:taken] = view[:taken]
        del pending[:taken]
        return taken

    def _finish(self, size: int) -> None:
        """Take the COPY's final results off the connection (`size`: libpq's last answer,
        -1 at the end, -2 on a failure); raise what went wrong."""
        if size == -2:
            raise psycopg.OperationalError(self.pgconn.get_error_message())
        failure = None
        while (result := self.pgconn.get_result()) is not None:
            if result.status != pq.ExecStatus.COMMAND_OK and failure is None:
                failure = psycopg.errors.error_from_result(result, encoding=self.encoding)
        if failure is not None:
            raise failure

    def abandon(self) -> None:
        """If the reading stopped before the end, read what is left, so that the
        connection (and its transaction: a cancelled COPY would abort it) is free for the
        next query."""
        if self.ended:
            return
        self.ended = True
        with contextlib.suppress(psycopg.Error):
            while (size := self.pgconn.get_copy_data(0)[0]) >= 0:
                pass
            self._finish(size)


def _copy_start(connection, statement: str) -> None:
    """Send `statement` (a COPY TO STDOUT) and wait for the server to start sending."""
    pgconn = connection.pgconn
    pgconn.send_query(statement.encode(connection.info.encoding))
    failure = None
    while (result := pgconn.get_result()) is not None:
        if result.status == pq.ExecStatus.COPY_OUT:
            return
        failure = failure or psycopg.errors.error_from_result(
            result, encoding=connection.info.encoding)
    raise failure or psycopg.OperationalError(pgconn.get_error_message())


def queryset_frames(*, queryset: QuerySet, names: list[Hashable], text_names: Iterable[Hashable],
                    chunk_rows: int) -> Iterator[pandas.DataFrame]:
    """The rows of `queryset` (a values_list with one expression per name), `chunk_rows`
    at a time. Columns in `text_names` hold the COPY text of each value (NaN for NULL);
    the others hold what pandas makes of the text: numbers where every field of the chunk
    parses as one, else the text (see `numbers`)."""
    wrapper = connections[queryset.db]
    sql, params = queryset.query.sql_with_params()
    statement = f"COPY ({wrapper.ops.compose_sql(sql, params)}) TO STDOUT"
    wrapper.ensure_connection()
    with wrapper.wrap_database_errors:
        _copy_start(wrapper.connection, statement)
        stream = _CopyStream(wrapper.connection)
        try:
            yield from pandas.read_csv(
                io.BufferedReader(stream, 1 << 20), sep="\t", header=None, names=names,
                dtype=dict.fromkeys(text_names, object), quoting=csv.QUOTE_NONE,
                keep_default_na=False, na_values=[NULL], skip_blank_lines=False,
                chunksize=chunk_rows)
        finally:
            stream.abandon()


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
