"""Records beside the shards: what every kind shares (egide.engine.siterecords)."""

from __future__ import annotations

from collections.abc import Sequence

from egide.crypto import aead
from egide.engine.siterecords import open_document, open_in_any, seal_document


def test_a_record_naming_no_bucket_opens_under_its_bucket_tried_busiest_first() -> None:
    """Decision 0018: the bucket whose key opens a record is its bucket, and it is tried
    first next time (move-to-front), so records of a busy bucket cost one tag check."""
    keys = {bytes([n]) * 16: [aead.new_key()] for n in range(4)}
    busy = bytes([2]) * 16
    sealed = seal_document(keys[busy][0], {"n": 1}, b"ctx/" + busy)
    tried: list[bytes] = []

    def opens(generations: Sequence[bytes], bucket_id: bytes, data: bytes) -> bytes | None:
        tried.append(bucket_id)
        return bucket_id if open_document(generations, data, b"ctx/" + bucket_id) else None

    order = list(keys)
    assert open_in_any(keys, sealed, opens, order) == busy
    assert tried == list(keys)[:3] and order[0] == busy
    tried.clear()
    assert open_in_any(keys, sealed, opens, order) == busy
    assert tried == [busy]
    other = seal_document(aead.new_key(), {"n": 1}, b"ctx/" + busy)
    assert open_in_any(keys, other, opens, order) is None  # of no bucket at hand
