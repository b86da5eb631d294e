"""Amendment records: a version's later changes, sealed, numbered, the newest winning."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import make_env, payload

from egide.domain import (
    ACL_HEADER,
    NO_BUCKET,
    amendment_name,
    legacy_amendment_name,
    parse_amendment_name,
)
from egide.engine.amendments import amendment_number, open_amendment, record_amendment
from egide.engine.siterecords import newest_of, superseded_of


def test_names_round_trip_and_the_newest_supersedes_the_others() -> None:
    bucket, version, other = b"\x01" * 16, b"\x02" * 16, b"\x03" * 16
    names = [amendment_name(version, n) for n in (5, 17)]
    names.append(legacy_amendment_name(bucket, version, 9))  # written before decision 0018
    names.append(amendment_name(other, 3))
    assert parse_amendment_name(names[1]) == (NO_BUCKET, version, 17)
    assert parse_amendment_name(names[2]) == (bucket, version, 9)
    assert parse_amendment_name("mark-" + "0" * 32 + "-" + "0" * 32) is None
    assert newest_of(names, amendment_number) == {version: names[1], other: names[3]}
    assert sorted(superseded_of([*names, "keys-abc"], amendment_number)) == sorted(
        [names[0], names[2]]
    )


def test_a_change_is_recorded_sealed_on_every_site(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        bucket = await env.store.create_bucket("b")
        version = await env.put("b", "k", payload(100))
        await env.catalog.update_version_headers(
            version.version_id,
            {**version.headers, "x-amz-tagging": "project=top-secret", ACL_HEADER: "[]"},
        )
        await env.catalog.set_lock(bucket.id, "k", version.version_id, legal_hold=True)
        await record_amendment(env.store.vault, version.version_id)
        (name,) = [n async for n in env.sites[0].list("amend-")]
        parsed = parse_amendment_name(name)
        assert parsed is not None and parsed[:2] == (NO_BUCKET, version.version_id)
        assert bucket.id.hex() not in name
        copies = {await site.read(name, 0, -1) for site in env.sites}
        assert len(copies) == 1
        sealed = copies.pop()
        assert b"top-secret" not in sealed
        key = env.store.bucket_key(bucket)
        found = open_amendment([key], bucket.id, version.version_id, parsed[2], sealed)
        assert found is not None and found.legal_hold and found.tags == "project=top-secret"
        # The ACL is changeable state too (PutObjectAcl): a rebuilt catalog gets it back.
        assert found.acl_known and found.acl == "[]"
        assert found.apply(version).headers[ACL_HEADER] == "[]"
        # Bound to its number: a copy renamed to look newer does not open.
        assert open_amendment([key], bucket.id, version.version_id, parsed[2] + 1, sealed) is None

    env.run(scenario)
