"""The `egide://` filesystem over a real engine: positional reads from many threads at once,
what exists (info, ls, find, glob, modified), streamed writes, refusals naming the object."""

from __future__ import annotations

import random
import sys
import threading
from datetime import UTC, datetime

import pytest
from tests.analytics.conftest import Served
from tests.engine.helpers import BLOCK, payload

from egide.auth.authorize import Principal, RequestContext
from egide.coding.shardfile import HEADER_SIZE
from egide.domain import ShardsUnavailable

MiB = 1024 * 1024


def test_threads_reading_random_ranges_of_one_handle_get_the_plaintext(served: Served) -> None:
    """DuckDB seeks then reads on one handle from several threads: each read must return the
    bytes at its own thread's offset, never another thread's."""
    served.bucket("b")
    data = payload(3 * MiB + 12345, seed=7)
    served.put("b", "blob", data)
    fs = served.fs()
    handle = fs.open("egide://b/blob", "rb")
    failures: list[str] = []

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(60):
            start = rng.randrange(len(data))
            length = rng.choice((1, 100, 4096, 70_000, 300_000))
            if rng.random() < 0.5:
                handle.seek(start)
                got = handle.read(length)
            else:
                got = fs.cat_file("egide://b/blob", start, start + length)
            if got != data[start : start + length]:
                failures.append(f"thread {seed}: {length} bytes at {start} differ")

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(8)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as the interpreter can
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        sys.setswitchinterval(interval)
    assert failures == []


def test_sequential_reads_follow_on_and_stop_at_the_end(served: Served) -> None:
    served.bucket("b")
    data = payload(200_000, seed=1)
    served.put("b", "blob", data)
    with served.fs().open("egide://b/blob", "rb") as handle:
        assert handle.read(1000) == data[:1000]
        assert handle.read(1000) == data[1000:2000]
        assert handle.tell() == 2000
        handle.seek(-10, 2)
        assert handle.read() == data[-10:]
        assert handle.read(5) == b""
    assert served.fs().cat_file("egide://b/blob", -100) == data[-100:]


def test_what_exists(served: Served) -> None:
    served.bucket("b")
    before = datetime.now(UTC).replace(microsecond=0)
    for key in ("data/year=2025/a.csv", "data/year=2026/b.csv", "data/year=2026/c.json", "top"):
        served.put("b", key, key.encode())
    fs = served.fs()
    info = fs.info("egide://b/data/year=2026/b.csv")
    assert (info["type"], info["size"], info["name"]) == ("file", 20, "b/data/year=2026/b.csv")
    assert fs.info("egide://b/data")["type"] == "directory"
    assert fs.info("egide://b")["type"] == "directory"
    assert fs.ls("egide://b", detail=False) == ["b/data", "b/top"]
    assert fs.ls("egide://b/data", detail=False) == ["b/data/year=2025", "b/data/year=2026"]
    assert fs.find("egide://b/data") == [
        "b/data/year=2025/a.csv", "b/data/year=2026/b.csv", "b/data/year=2026/c.json",
    ]  # fmt: skip
    assert fs.glob("egide://b/data/*/*.csv") == ["b/data/year=2025/a.csv", "b/data/year=2026/b.csv"]
    assert fs.glob("egide://b/**/*.json") == ["b/data/year=2026/c.json"]
    assert before <= fs.modified("egide://b/top") <= datetime.now(UTC)
    assert fs.isfile("egide://b/top") and not fs.isdir("egide://b/top")
    assert not fs.exists("egide://b/nothing") and not fs.exists("egide://nobucket/x")
    with pytest.raises(FileNotFoundError):
        fs.info("egide://b/nothing")


def test_a_file_opened_for_writing_streams_parts(served: Served) -> None:
    """Written a part at a time (a multipart upload), never held whole; visible on close."""
    served.bucket("b")
    data = payload(23 * MiB, seed=3)
    fs = served.fs(part_size=5 * MiB)
    largest = 0
    with fs.open("egide://b/out/big.bin", "wb") as sink:
        for start in range(0, len(data), 1_000_000):
            sink.write(data[start : start + 1_000_000])
            largest = max(largest, len(sink._buffer))
            assert not fs.exists("egide://b/out/big.bin")  # nothing visible before close
    assert largest < 5 * MiB
    version = served.engine.run(served.env.store.head_object("b", "out/big.bin"))
    assert [p.size for p in version.parts] == [5 * MiB] * 4 + [3 * MiB]
    assert served.get("b", "out/big.bin") == data
    with fs.open("egide://b/small.csv", "wb") as sink:
        sink.write(b"a,b\n1,2\n")
    assert served.get("b", "small.csv") == b"a,b\n1,2\n"


def test_a_failed_write_leaves_nothing(served: Served) -> None:
    served.bucket("b")
    fs = served.fs(part_size=5 * MiB)
    with pytest.raises(RuntimeError), fs.open("egide://b/half", "wb") as sink:
        sink.write(payload(6 * MiB))
        raise RuntimeError("the writer failed")
    assert not fs.exists("egide://b/half")


def test_refusals_name_the_action_and_the_object(served: Served) -> None:
    served.bucket("b")
    served.put("b", "secret.csv", b"x")
    asked: list[tuple[str, str]] = []

    async def deny_reads(p: Principal, action: str, resource: str, c: RequestContext) -> bool:
        asked.append((action, resource))
        return action not in ("s3:GetObject", "s3:ListBucket")

    fs = served.fs(deny_reads, user="bob")
    with pytest.raises(PermissionError, match=r"bob may not s3:GetObject on egide://b/secret.csv"):
        fs.cat_file("egide://b/secret.csv")
    with pytest.raises(PermissionError, match=r"bob may not s3:ListBucket on egide://b"):
        fs.find("egide://b/")
    with pytest.raises(PermissionError, match=r"s3:PutObject on egide://b/new"):
        served.fs(deny_all, user="bob").open("egide://b/new", "wb")
    assert ("s3:GetObject", "arn:aws:s3:::b/secret.csv") in asked


async def deny_all(p: Principal, action: str, resource: str, c: RequestContext) -> bool:
    return False


def test_a_range_read_touches_only_the_blocks_it_covers(served: Served) -> None:
    """Block 0 made unreadable (its pieces corrupt on three sites, one more than m): a range in
    block 5 still reads, because nothing of block 0 is fetched for it."""
    served.bucket("b")
    data = payload(10 * BLOCK, seed=5)
    version = served.put("b", "blob", data)
    for path in served.env.shard_paths(version)[:3]:
        with path.open("r+b") as shard:
            shard.seek(HEADER_SIZE + 5)
            byte = shard.read(1)
            shard.seek(HEADER_SIZE + 5)
            shard.write(bytes([byte[0] ^ 0xFF]))
    fs = served.fs()
    start = 5 * BLOCK + 10
    assert fs.cat_file("egide://b/blob", start, start + 1000) == data[start : start + 1000]
    with pytest.raises(ShardsUnavailable):
        fs.cat_file("egide://b/blob", 0, 10)


def test_buckets_are_listed_and_looked_at_with_the_callers_rights(served: Served) -> None:
    served.bucket("b")
    served.bucket("c")
    assert served.fs().ls("egide://", detail=False) == ["b", "c"]

    async def no_listing(p: Principal, action: str, resource: str, c: RequestContext) -> bool:
        return action not in ("s3:ListAllMyBuckets", "s3:ListBucket")

    fs = served.fs(no_listing, user="bob")
    with pytest.raises(PermissionError, match=r"bob may not s3:ListAllMyBuckets on egide://$"):
        fs.ls("egide://")
    with pytest.raises(PermissionError, match=r"bob may not s3:ListBucket on egide://c$"):
        fs.info("egide://c")


def test_pyarrow_reads_and_writes_through_the_filesystem(served: Served) -> None:
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    served.bucket("b")
    fs = served.fs()
    for year in (2025, 2026):
        table = pa.table({"v": list(range(year, year + 10))})
        pq.write_table(table, f"b/t/year={year}/part.parquet", filesystem=fs)
    dataset = ds.dataset("b/t", filesystem=fs, format="parquet", partitioning="hive")
    table = dataset.to_table()
    assert sorted(table["v"].to_pylist()) == sorted([*range(2025, 2035), *range(2026, 2036)])
    assert sorted(set(table["year"].to_pylist())) == [2025, 2026]
