"""No site holds plaintext: not the content, not the key, not a metadata value."""

from __future__ import annotations

from tests.conftest import ServerFactory

from egide.domain import SITE_RECORD_PREFIXES

CONTENT_MARKER = b"CONFIDENTIAL-PAYROLL-2026-"
KEY_MARKER = "secret-project-marianne"
META_MARKER = "mayor-office-only"


def test_sites_hold_only_ciphertext(make_server: ServerFactory) -> None:
    server = make_server()
    s3 = server.client()
    s3.create_bucket(Bucket="strategic-bucket")
    bodies = {
        f"{KEY_MARKER}/small.txt": CONTENT_MARKER * 3,
        f"{KEY_MARKER}/large.bin": CONTENT_MARKER * 200_000,  # several blocks
    }
    for key, body in bodies.items():
        s3.put_object(
            Bucket="strategic-bucket",
            Key=key,
            Body=body,
            Metadata={"classification": META_MARKER},
            ContentType="application/x-marker-type",
        )
    needles = [
        CONTENT_MARKER[:16],
        KEY_MARKER.encode(),
        META_MARKER.encode(),
        b"strategic-bucket",
        b"x-marker-type",
        b"classification",
    ]
    files = [p for site in server.site_dirs() for p in site.rglob("*") if p.is_file()]
    shards = [
        p for p in files if "shards" in p.parts and not p.name.startswith(SITE_RECORD_PREFIXES)
    ]
    assert len(shards) == 2 * 6
    # The records on every site (the bucket's key record, and the bucket settings and
    # credentials the server records: decision 0016) are sealed too: they are among the files
    # searched below.
    assert len([p for p in files if p.name.startswith("keys-")]) == 6
    for path in files:
        data = path.read_bytes()
        for needle in needles:
            assert needle not in data, f"{needle!r} found in clear in {path}"
        assert KEY_MARKER not in str(path)
    # And the objects do read back.
    for key, body in bodies.items():
        assert s3.get_object(Bucket="strategic-bucket", Key=key)["Body"].read() == body
