"""What a 20-statement bucket policy costs a 4 KiB GET and PUT over HTTP, against a real server.

    python benchmarks/bench_authorize_http.py [--ops 1000] [--threads 4] [--repeat 3]

Starts a throw-away `egide serve` (one worker), makes a user whose identity policy allows
s3:GetObject and s3:PutObject, and two buckets: `nopolicy` without a bucket policy and
`withpolicy` with the 20 statements of bench_authorize.py (19 naming other users, prefixes and
networks, with conditions; the last allowing everyone over plain HTTP). With `--threads` boto3
clients of that user at once: 4 KiB GETs/s and PUTs/s on each bucket, alternated --repeat times
after a warm-up (each pair in the other order than the last); prints the medians and the ratio
"20 statements / none". bench_authorize.py gives the decision's cost without HTTP around it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
from bench_authorize import bucket_policy
from bench_sts import CONFIG, egide, free_port, rate, serving

ADMIN, ADMIN_SECRET = "EGBENCHAUTHZ0001", "bench-authorize-secret-0001"
BODY = os.urandom(4096)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ops", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
            f'[[credentials]]\naccess_key = "{ADMIN}"\nsecret_key = "{ADMIN_SECRET}"\n'
        )
        with serving(config, port) as endpoint:
            measure(root, config, endpoint, args)


def measure(root: Path, config: Path, endpoint: str, args: Any) -> None:
    admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                         aws_access_key_id=ADMIN, aws_secret_access_key=ADMIN_SECRET)  # fmt: skip
    for name in ("nopolicy", "withpolicy"):
        admin.create_bucket(Bucket=name)
    admin.put_bucket_policy(Bucket="withpolicy", Policy=bucket_policy(20, "withpolicy"))
    egide(config, "user", "create", "bench")
    objects = ["arn:aws:s3:::nopolicy/*", "arn:aws:s3:::withpolicy/*"]
    rights = {"Statement": {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
                            "Resource": objects}}  # fmt: skip
    (root / "rights.json").write_text(json.dumps(rights))
    egide(config, "user", "policy-put", "bench", "rights", str(root / "rights.json"))
    key = json.loads(egide(config, "key", "create", "bench", "--json"))
    user = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
        aws_access_key_id=key["access_key"], aws_secret_access_key=key["secret_key"],
    )  # fmt: skip
    time.sleep(1.1)  # the worker applies the new key and policy within a second

    def get(bucket: str) -> Callable[[int], object]:
        return lambda i: user.get_object(Bucket=bucket, Key=f"k{i % 100}")["Body"].read()

    def put(bucket: str) -> Callable[[int], object]:
        return lambda i: user.put_object(Bucket=bucket, Key=f"k{i % 100}", Body=BODY)

    settings = {"none": "nopolicy", "20 statements": "withpolicy"}
    for bucket in settings.values():  # warm-up, and the objects the GETs read
        rate(100, args.threads, put(bucket))
        rate(200, args.threads, get(bucket))
    runs: dict[tuple[str, str], list[float]] = {}
    order = list(settings.items())
    for _ in range(args.repeat):
        for name, bucket in order:
            for op, make in (("GET", get), ("PUT", put)):
                runs.setdefault((op, name), []).append(rate(args.ops, args.threads, make(bucket)))
        order.reverse()
    for op in ("GET", "PUT"):
        medians = {name: statistics.median(runs[(op, name)]) for name in settings}
        for name, median in medians.items():
            spread = ", ".join(f"{r:.0f}" for r in runs[(op, name)])
            print(f"4 KiB {op}, {name:13}  {median:8.0f} ops/s  (runs: {spread})")
        print(f"4 KiB {op}, 20 statements / none  {medians['20 statements'] / medians['none']:.3f}")


if __name__ == "__main__":
    main()
