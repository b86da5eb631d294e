"""A real store (SQLite catalog, six local sites) served on an event loop of its own thread, as
`egide sql` serves it, and the `egide://` filesystem over it for a caller."""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.engine.helpers import Env, chunks, make_env

from egide.analytics.access import ObjectAccess
from egide.analytics.bridge import LoopThread
from egide.analytics.filesystem import EgideFileSystem
from egide.auth.authorize import Authorizer, Decision, Principal, allow_all
from egide.domain import ObjectVersion


@dataclass
class Served:
    env: Env
    engine: LoopThread

    def put(self, bucket: str, key: str, data: bytes) -> ObjectVersion:
        return self.engine.run(
            self.env.store.put_object(bucket, key, chunks(data), size=len(data), headers={})
        )

    def bucket(self, name: str) -> str:
        self.engine.run(self.env.store.create_bucket(name))
        return name

    def fs(self, decide: Decision = allow_all, user: str = "admin", **kw: int) -> EgideFileSystem:
        access = ObjectAccess(self.env.store, Authorizer(decide), Principal(user=user))
        return EgideFileSystem(access, self.engine.bridge(), **kw)

    def get(self, bucket: str, key: str) -> bytes:
        return self.engine.run(self.env.get(bucket, key))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    env = make_env(tmp_path)
    with LoopThread() as engine:
        yield Served(env, engine)
        engine.run(env.catalog.close())


def parquet_bytes(table: pa.Table, row_group_size: int | None = None) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=row_group_size)
    return sink.getvalue()
