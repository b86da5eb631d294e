"""Key benchmark: Argon2id unlock time, master and bucket key rotation against catalog size.

    python benchmarks/bench_keys.py [--buckets 1000] [--versions 100000] [--sites 6]

Prints:
  1. unlocking a passphrase-protected master key file with the default Argon2id parameters
     (64 MiB, 3 passes, 4 lanes), median of 5; and a plain key file, for reference;
  2. `rotate_master_key` over --buckets buckets (each with a key record on --sites local
     sites) and one credential: seconds, and per bucket;
  3. `rotate_bucket_key` over one bucket holding --versions versions (catalog rows only: a
     rotation never reads or writes shards), batches of 1000: seconds, and versions per second.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from egide.catalog import open_catalog
from egide.config import Settings
from egide.crypto.aead import new_key
from egide.crypto.keyfile import MasterKeyFiles, encode_key_file, read_key_file, write_key_file
from egide.crypto.keyring import Keyring
from egide.domain import Bucket, ObjectVersion, new_id
from egide.engine.keyrecords import KeyRecord, write_key_record
from egide.engine.rekey import rotate_bucket_key, rotate_master_key
from egide.sites.local import LocalSite


def unlock_times(tmp: Path) -> tuple[float, float]:
    protected, plain = tmp / "protected.key", tmp / "plain.key"
    write_key_file(protected, encode_key_file(new_key(), "benchmark passphrase"))
    write_key_file(plain, encode_key_file(new_key()))
    runs = []
    for _ in range(5):
        started = time.perf_counter()
        read_key_file(protected, "benchmark passphrase")
        runs.append(time.perf_counter() - started)
    started = time.perf_counter()
    read_key_file(plain)
    return statistics.median(runs), time.perf_counter() - started


async def rotations(tmp: Path, buckets: int, versions: int, site_count: int) -> None:
    files = MasterKeyFiles(tmp / "master.key")
    master = new_key()
    write_key_file(files.current, encode_key_file(master))
    keyring = Keyring(master)
    catalog = open_catalog(Settings(data_dir=tmp))
    sites = {}
    for i in range(site_count):
        site = LocalSite(f"site-{i}", tmp / f"site-{i}")
        site.prepare()
        sites[site.name] = site
    for n in range(buckets):
        bucket_id = new_id()
        bucket_key, wrapped = keyring.new_bucket_key(bucket_id)
        bucket = Bucket(bucket_id, f"bucket-{n}", time.time(), wrapped)
        await write_key_record(sites, keyring, KeyRecord(bucket_id, bucket.name, 0.0, (wrapped,)))
        await catalog.create_bucket(bucket)
        if n == 0:
            big, big_key = bucket, bucket_key
    await catalog.add_credential("AK", keyring.seal_secret("AK", b"secret"))
    print(f"  filling bucket-0 with {versions} versions …", flush=True)
    for start in range(0, versions, 5000):
        batch = []
        for i in range(start, min(start + 5000, versions)):
            version_id = new_id()
            _, wrapped_data = Keyring.new_data_key(big_key, version_id)
            version = ObjectVersion(
                bucket_id=big.id, key=f"k{i}", version_id=version_id, size=1, etag="e",
                last_modified=0.0, wrapped_data_key=wrapped_data, k=4, m=2, block_size=65536,
                sites=tuple(sites)[:6],
            )  # fmt: skip
            batch.append(version)
        await catalog.commit_pack(f"pack-{start}", list(sites), batch)

    result = await rotate_master_key(files, None, catalog, sites)
    print(
        f"master key rotation: {buckets} buckets ({site_count} sites): {result.seconds:.2f} s, "
        f"{result.seconds / buckets * 1000:.2f} ms per bucket"
    )
    keys = files.load()
    bucket_result = await rotate_bucket_key(catalog, Keyring(keys[0]), sites, "bucket-0")
    print(
        f"bucket key rotation: {bucket_result.rewrapped} versions: "
        f"{bucket_result.seconds:.2f} s, {bucket_result.rewrapped / bucket_result.seconds:,.0f} "
        "versions/s (both passes)"
    )
    await catalog.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buckets", type=int, default=1000)
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--sites", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        protected, plain = unlock_times(tmp)
        print(
            f"unlock: Argon2id m=65536 t=3 p=4 {protected * 1000:.0f} ms (median of 5); "
            f"plain key file {plain * 1000:.2f} ms"
        )
        asyncio.run(rotations(tmp, args.buckets, args.versions, args.sites))


if __name__ == "__main__":
    main()
