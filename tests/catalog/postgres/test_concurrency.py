"""Several gateways on one PostgreSQL catalog (src/egide/catalog/postgres/): each test opens
two catalogs (two pools: two gateways) on one database and races the same key from both, many
writers at once. Exactly one conditional write wins, versions of one key get distinct places,
a completion and an abort of one upload are decided once, an Iceberg commit of two tables is
won by one writer for both tables, rights changes each move the counter once, and a
transaction PostgreSQL aborts for a deadlock is run again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from tests.catalog.contract.builders import new_bucket, part, upload, version
from tests.postgres import PASSWORD

from egide.catalog.postgres import PostgresCatalog
from egide.catalog.postgres.connection import Db
from egide.catalog.tables import CommitConflict, TableSwap
from egide.domain import DomainError, NoSuchUpload, PreconditionFailed, WriteCondition

#: Writers per gateway in each race.
WRITERS = 8


@pytest.fixture
def gateways(postgres_url: str) -> Iterator[tuple[PostgresCatalog, PostgresCatalog]]:
    first, second = (PostgresCatalog(postgres_url, password=PASSWORD) for _ in range(2))
    first.open()
    second.open()
    yield first, second


async def _closing(*catalogs: PostgresCatalog) -> None:
    for catalog in catalogs:
        await catalog.close()


def test_a_create_only_write_raced_from_two_gateways_is_decided_once(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    first, second = gateways
    bucket = new_bucket()

    async def race() -> list[BaseException | None]:
        try:
            await first.create_bucket(bucket)
            attempts = [
                catalog.commit_version(version(bucket, "k"), WriteCondition(if_none_match="*"))
                for _ in range(WRITERS)
                for catalog in (first, second)
            ]
            outcomes = await asyncio.gather(*attempts, return_exceptions=True)
            assert len(await first.list_versions(bucket.id, "k", None, 100)) == 1
            return list(outcomes)
        finally:
            await _closing(first, second)

    outcomes = asyncio.run(race())
    assert outcomes.count(None) == 1
    assert all(isinstance(o, PreconditionFailed) for o in outcomes if o is not None)


def test_if_match_raced_from_two_gateways_lets_exactly_one_replace_the_object(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    first, second = gateways
    bucket = new_bucket()
    original = version(bucket, "k", etag='"v1"')

    async def race() -> list[BaseException | None]:
        try:
            await first.create_bucket(bucket)
            await first.commit_version(original)
            attempts = [
                catalog.commit_version(
                    version(bucket, "k", null=False), WriteCondition(if_match='"v1"')
                )
                for _ in range(WRITERS)
                for catalog in (first, second)
            ]
            return list(await asyncio.gather(*attempts, return_exceptions=True))
        finally:
            await _closing(first, second)

    outcomes = asyncio.run(race())
    assert outcomes.count(None) == 1
    assert all(isinstance(o, PreconditionFailed) for o in outcomes if o is not None)


def test_versions_written_at_once_from_two_gateways_are_all_kept_in_one_order(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    first, second = gateways
    bucket = new_bucket()
    written = [version(bucket, "k", null=False) for _ in range(2 * WRITERS)]

    async def race() -> None:
        try:
            await first.create_bucket(bucket)
            await asyncio.gather(*[
                (first, second)[i % 2].commit_version(v) for i, v in enumerate(written)
            ])  # fmt: skip
            listed = await second.list_versions(bucket.id, "k", None, 100)
            assert {v.version_id for v, _ in listed} == {v.version_id for v in written}
            assert len({v.seq for v, _ in listed}) == len(written)  # one place each
            assert [latest for _, latest in listed] == [True] + [False] * (len(written) - 1)
            current = await first.get_object(bucket.id, "k")
            assert current is not None and current.version_id == listed[0][0].version_id
        finally:
            await _closing(first, second)

    asyncio.run(race())


def test_a_completion_and_an_abort_raced_from_two_gateways_are_decided_once(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    first, second = gateways
    bucket = new_bucket()
    started = upload(bucket, "movie")

    async def race() -> list[BaseException | None]:
        try:
            await first.create_bucket(bucket)
            await first.create_upload(started)
            seq = await first.next_part_seq(started.upload_id)
            await first.commit_part(started.upload_id, part(1, seq), started.sites)
            parts = tuple(await first.list_parts(started.upload_id))
            completed = version(bucket, "movie", version_id=started.upload_id, parts=parts)
            outcomes = await asyncio.gather(
                first.complete_upload(completed), second.abort_upload(started.upload_id),
                return_exceptions=True,
            )  # fmt: skip
            current = await second.get_object(bucket.id, "movie")
            if outcomes[0] is None:  # completed first: the abort found no upload
                assert current is not None and current.version_id == started.upload_id
            else:  # aborted first: nothing was completed
                assert current is None
            return list(outcomes)
        finally:
            await _closing(first, second)

    outcomes = asyncio.run(race())
    assert outcomes.count(None) == 1
    assert all(isinstance(o, NoSuchUpload) for o in outcomes if o is not None)


def test_a_transaction_aborted_for_a_deadlock_is_run_again(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    """Two transactions lock two rows in opposite orders, each waiting for the other's first
    lock: PostgreSQL aborts one (DeadlockDetected), which `_transaction` runs again."""
    first, second = gateways
    runs = {"ab": 0, "ba": 0}

    async def scenario() -> None:
        try:
            await first.put_account_setting("a", "0")
            await first.put_account_setting("b", "0")
            both_hold_one = asyncio.Barrier(2)

            def locking(order: str, catalog: PostgresCatalog) -> object:
                async def work(db: Db) -> None:
                    runs[order] += 1
                    lock = "SELECT 1 FROM account_settings WHERE name = %s FOR UPDATE"
                    await db.execute(lock, (order[0],))
                    if runs[order] == 1:
                        await both_hold_one.wait()
                    await db.execute(lock, (order[1],))
                    await db.execute(
                        "UPDATE account_settings SET value = value || %s WHERE name = 'a'",
                        (order,),
                    )

                return catalog._transaction(work)

            await asyncio.gather(locking("ab", first), locking("ba", second))  # type: ignore[arg-type]
            value = await first.get_account_setting("a")
            assert value is not None and sorted([value[1:3], value[3:5]]) == ["ab", "ba"]
        finally:
            await _closing(first, second)

    asyncio.run(scenario())
    assert sorted(runs.values()) == [1, 2]  # one of them ran again


def test_a_domain_error_is_not_retried(gateways: tuple[PostgresCatalog, PostgresCatalog]) -> None:
    first, second = gateways
    runs = 0

    async def scenario() -> None:
        async def refuse(db: Db) -> None:
            nonlocal runs
            runs += 1
            raise PreconditionFailed("k")

        try:
            with pytest.raises(DomainError):
                await first._transaction(refuse)
        finally:
            await _closing(first, second)

    asyncio.run(scenario())
    assert runs == 1


def test_a_two_table_commit_raced_from_two_gateways_is_won_by_one_for_both_tables(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    """Half the writers list the tables in the other order: the fixed lock order keeps them
    from deadlocking, and no writer's swap of one table survives without its other."""
    first, second = gateways
    writers = [(catalog, n) for n in range(WRITERS) for catalog in (first, second)]

    def swaps(n: int) -> list[TableSwap]:
        both = [TableSwap(("ns",), t, f"{t}-v1", f"{t}-by-{n}") for t in ("a", "b")]
        return both if n % 2 else both[::-1]

    async def race() -> tuple[list[BaseException | None], list[str | None]]:
        try:
            await first.create_namespace("wh", ("ns",), {})
            for table in ("a", "b"):
                await first.create_table("wh", ("ns",), table, f"{table}-v1")
            attempts = [catalog.swap_tables("wh", swaps(n)) for catalog, n in writers]
            outcomes = list(await asyncio.gather(*attempts, return_exceptions=True))
            return outcomes, [await second.table("wh", ("ns",), t) for t in ("a", "b")]
        finally:
            await _closing(first, second)

    outcomes, locations = asyncio.run(race())
    assert outcomes.count(None) == 1
    assert all(isinstance(o, CommitConflict) for o in outcomes if o is not None)
    winner = writers[outcomes.index(None)][1]
    assert locations == [f"a-by-{winner}", f"b-by-{winner}"]


def test_rights_changes_from_two_gateways_each_move_the_counter_once(
    gateways: tuple[PostgresCatalog, PostgresCatalog],
) -> None:
    first, second = gateways
    bucket = new_bucket()

    async def race() -> tuple[int, int]:
        try:
            await first.create_bucket(bucket)
            before = await second.rights_version()
            await asyncio.gather(
                *(
                    catalog.put_bucket_setting(bucket.id, f"s{n}", "v")
                    for n in range(WRITERS)
                    for catalog in (first, second)
                )
            )
            return before, await second.rights_version()
        finally:
            await _closing(first, second)

    before, after = asyncio.run(race())
    assert after - before == 2 * WRITERS
