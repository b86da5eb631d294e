"""Policy evaluation: what one request's authorization costs (egide.auth.policy).

    python benchmarks/bench_policy.py [--seconds 1.0] [--repeat 3]

Compiles an identity policy and a bucket policy of 1, 20 and 100 statements (each on its own
prefix of the bucket, the request matching the last one, so every statement is looked at), with
and without a condition block on each statement (an IP range, TLS required, a prefix pattern with
${aws:username}), and prints evaluations per second (best of --repeat runs of --seconds each) for
a request whose condition keys are already built, and for one that also builds them from a
RequestContext. Parsing and compiling is timed apart: it happens once per policy document.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from egide.auth.authorize import RequestContext
from egide.auth.policy import (
    BUCKET_POLICY_MAX_BYTES,
    Policy,
    PolicyKind,
    Values,
    Verdict,
    evaluate,
    parse_policy,
    user_caller,
)
from egide.auth.policy.context import condition_keys

ACCOUNT = "111122223333"
BUCKET = "bench"
ALICE = user_caller(ACCOUNT, "alice")


def _statement(i: int, conditions: bool, principal: bool) -> dict[str, Any]:
    statement: dict[str, Any] = {
        "Sid": f"S{i}",
        "Effect": "Allow",
        "Action": ["s3:GetObject", "s3:PutObject", "s3:List*"],
        "Resource": [f"arn:aws:s3:::{BUCKET}/p{i}/*"],
    }
    if principal:
        statement["Principal"] = {"AWS": ALICE.arn}
    if conditions:
        statement["Condition"] = {
            "IpAddress": {"aws:SourceIp": ["192.0.2.0/24", "2001:db8::/32"]},
            "Bool": {"aws:SecureTransport": "true"},
            "StringLike": {"s3:prefix": ["", "home/${aws:username}/*"]},
        }
    return statement


def _document(statements: list[dict[str, Any]]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def _policies(count: int, conditions: bool) -> tuple[Policy | None, list[Policy]]:
    """The same statements as one bucket policy (when it fits AWS's 20 KiB) and as identity
    policies of ten statements each (a user's and its groups' policies)."""
    as_bucket = _document([_statement(i, conditions, True) for i in range(count)])
    bucket = None
    if len(as_bucket) <= BUCKET_POLICY_MAX_BYTES:
        bucket = parse_policy(as_bucket, PolicyKind.BUCKET, bucket=BUCKET)
    identity = [
        parse_policy(
            _document(
                [_statement(i, conditions, False) for i in range(start, min(start + 10, count))]
            ),
            PolicyKind.IDENTITY,
        )
        for start in range(0, count, 10)
    ]
    return bucket, identity


def _rate(work: Callable[[], object], seconds: float, repeat: int) -> float:
    best = 0.0
    for _ in range(repeat):
        done = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            for _ in range(200):
                work()
            done += 200
        best = max(best, done / (time.perf_counter() - start))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    request = RequestContext(
        request_time=datetime.now(UTC),
        source_ip="192.0.2.10",
        secure_transport=True,
        user_agent="bench",
        keys={"s3:prefix": "home/alice/x"},
    )
    print(f"{'statements':>10} {'conditions':>10} {'policies':>10} {'eval/s':>10} {'+keys/s':>10}")
    for conditions in (False, True):
        for count in (1, 20, 100):
            bucket, identity = _policies(count, conditions)
            resource = f"arn:aws:s3:::{BUCKET}/p{count - 1}/object"
            values = Values(condition_keys(request, ALICE))
            setups: list[tuple[str, Policy | None, list[Policy]]] = [
                (f"{len(identity)} identity", None, identity)
            ]
            if bucket is not None:
                setups.insert(0, ("bucket", bucket, []))
            for label, bucket_policy, identity_policies in setups:
                decide = partial(
                    evaluate, ALICE, "s3:GetObject", resource, values,
                    identity_policies=identity_policies, bucket_policy=bucket_policy,
                )  # fmt: skip
                assert decide().allowed

                def decide_with_keys(decide: partial[Verdict] = decide) -> Verdict:
                    keys = condition_keys(request, ALICE)  # built for every request
                    return evaluate(*decide.args[:3], keys, **decide.keywords)

                rate = _rate(decide, args.seconds, args.repeat)
                with_keys = _rate(decide_with_keys, args.seconds, args.repeat)
                print(
                    f"{count:>10} {'yes' if conditions else 'no':>10} {label:>10} "
                    f"{rate:>10,.0f} {with_keys:>10,.0f}"
                )
    text = _document([_statement(i, True, True) for i in range(20)])
    compile_rate = _rate(
        lambda: parse_policy(text, PolicyKind.BUCKET, bucket=BUCKET), args.seconds, 1
    )
    print(f"compiling a 20-statement bucket policy with conditions: {compile_rate:,.0f}/s")


if __name__ == "__main__":
    main()
