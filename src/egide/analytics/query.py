"""DuckDB in a sandbox, reading and writing through the `egide://` filesystem only.

Each query gets its own in-memory DuckDB connection with the caller's filesystem registered,
then locked down: no external access but the `egide://` prefix (`allowed_directories`), so no
file of the gateway's disk, no extension installed or loaded, no attached database, no Python
object scanned; no spilling to disk (plaintext would land on the gateway's disk); a memory
limit and a thread limit; and the configuration locked, so the query cannot undo any of it.
A timer interrupts the connection when the query outlasts its timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from egide.analytics.access import QueryAccessDenied
from egide.analytics.filesystem import PROTOCOL, EgideFileSystem

#: Rows per Arrow batch handed to the output.
BATCH_ROWS = 65_536


@dataclass(frozen=True)
class Limits:
    """What one query may use."""

    memory: str = "1GB"
    threads: int = 2
    timeout: float = 300.0


class QueryError(Exception):
    """The query failed: DuckDB's message, or the object the caller may not touch."""


class QueryTimeout(QueryError):
    pass


class QueryCancelled(QueryError):
    """`cancel` stopped it (the HTTP client that asked went away)."""


def connect(fs: EgideFileSystem, limits: Limits) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection that reaches `fs` and nothing else."""
    con = duckdb.connect(
        ":memory:",
        config={
            "threads": limits.threads,
            "memory_limit": limits.memory,
            "temp_directory": "",
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "python_enable_replacements": False,
        },
    )
    con.register_filesystem(fs)
    for statement in (
        # DuckDB draws a progress bar on the process's terminal for long queries: a server's
        # log is no place for it.
        "SET enable_progress_bar = false",
        f"SET allowed_directories = ['{PROTOCOL}://']",
        "SET enable_external_access = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement)
    return con


class Query:
    """One sandboxed query: `run(sql)` streams its result as Arrow batches while the timer
    runs; leaving the `with` block stops the timer and closes the connection."""

    def __init__(self, fs: EgideFileSystem, limits: Limits = Limits()) -> None:
        self.fs = fs
        self.limits = limits
        self._con: duckdb.DuckDBPyConnection | None = None
        self._timer: threading.Timer | None = None
        self.timed_out = False
        self.cancelled = False

    def __enter__(self) -> Query:
        try:
            self._con = connect(self.fs, self.limits)
        except duckdb.Error as exc:  # a memory limit DuckDB cannot read …
            raise QueryError(f"the query's limits were refused: {exc}") from None
        return self

    def __exit__(self, kind: object, *exc: object) -> None:
        """Commit what the query wrote if all went well (COPY TO, and files the caller opened
        on the filesystem meanwhile, such as `egide sql --out`), else discard it."""
        if self._timer is not None:
            self._timer.cancel()
        if self._con is not None:
            self._con.close()
        if self.fs._intrans:
            self.fs.transaction.complete(commit=kind is None)

    def _interrupt(self) -> None:
        self.timed_out = True
        if self._con is not None:
            self._con.interrupt()

    def cancel(self) -> None:
        """Stop the query from any thread: DuckDB's interrupt, seen by its next step."""
        self.cancelled = True
        if self._con is not None:
            self._con.interrupt()

    def run(self, sql: str) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
        """The result's schema and its batches (the query runs as they are read)."""
        assert self._con is not None, "use Query in a with block"
        self._timer = threading.Timer(self.limits.timeout, self._interrupt)
        self._timer.daemon = True
        self._timer.start()
        if not self.fs._intrans:
            self.fs.start_transaction()  # what the query writes is committed at the end
        with self._errors():
            relation = self._con.sql(sql)
            if relation is None:  # a statement without a result
                return pa.schema([]), iter(())
            reader = relation.to_arrow_reader(BATCH_ROWS)
        return reader.schema, self._batches(reader)

    def _batches(self, reader: pa.RecordBatchReader) -> Iterator[pa.RecordBatch]:
        with self._errors():
            yield from reader

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """DuckDB's exceptions as QueryError, naming the caller's refusal or the timeout."""
        try:
            yield
        except QueryError:
            raise
        except (duckdb.Error, pa.ArrowException, QueryAccessDenied, OSError) as exc:
            # OSError: a failure while the result streams comes through pyarrow's reader as
            # one ("Invalid Input Error: …").
            if self.cancelled:
                raise QueryCancelled("the query was cancelled") from None
            if self.timed_out:
                raise QueryTimeout(
                    f"the query ran past its timeout of {self.limits.timeout:g} s and was stopped"
                ) from None
            message = str(exc)
            if "AccessDenied: " in message:  # the filesystem's refusal, wrapped by DuckDB
                message = message[message.rfind("AccessDenied: ") :].strip()
            raise QueryError(message) from None
