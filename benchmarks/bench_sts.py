"""STS calls per second, and what a session token costs a 4 KiB GET, against a real server.

    python benchmarks/bench_sts.py [--calls 300] [--gets 1000] [--threads 4] [--repeat 3]

Starts a throw-away `egide serve` (one worker) trusting a small OpenID Connect issuer run in
this process (discovery document and JWKS over HTTP, tokens signed RS256 with joserfc), makes a
role, then, with `--threads` boto3 clients at once:
  * AssumeRole calls/s (signed by a user, identity policy and trust policy checked);
  * AssumeRoleWithWebIdentity calls/s (ID token verified against the cached JWKS);
  * 4 KiB GETs/s signed with a plain access key, and with a session's key and token (the
    token opened, AES-GCM, on every request; the role's policies read at most once a second),
    alternated --repeat times; the medians and their ratio are printed;
  * then, in this process, what opening one token costs (the steadier figure on a loaded box).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from joserfc import jwt
from joserfc.jwk import RSAKey

ACCESS, SECRET = "EGBENCHSTS0001", "bench-sts-secret-0001"
CONFIG = Config(retries={"max_attempts": 1}, max_pool_connections=32)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Issuer:
    """An OpenID Connect issuer on a local port (its discovery document and JWKS)."""

    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "bench"})
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.endswith("openid-configuration"):
                    doc: Any = {"issuer": outer.url, "jwks_uri": outer.url + "/jwks"}
                else:
                    doc = {"keys": [outer.key.as_dict(private=False)]}
                body = json.dumps(doc).encode()
                self.send_response(200)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def token(self) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": "bench", "aud": "bench", "iat": now, "exp": now + 3600,
                  "groups": ["bench"]}  # fmt: skip
        return jwt.encode({"alg": "RS256", "kid": "bench"}, claims, self.key)


def egide(config: Path, *args: str) -> str:
    done = subprocess.run([sys.executable, "-m", "egide", *args, "--config", str(config)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return done.stdout


@contextmanager
def serving(config: Path, port: int) -> Iterator[str]:
    """A throw-away `egide serve --config config` listening on `port`: its endpoint, once it
    accepts connections; stopped on leaving."""
    proc = subprocess.Popen([sys.executable, "-m", "egide", "serve", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(300):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait()


def rate(calls: int, threads: int, one: Callable[[int], object]) -> float:
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(one, range(calls)))
    return calls / (time.perf_counter() - began)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--gets", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    issuer = Issuer()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        port = free_port()
        config = root / "egide.toml"
        config.write_text(
            f'data_dir = "{root / "data"}"\nlisten = "127.0.0.1:{port}"\nworkers = 1\n'
            f'[[oidc]]\nissuer = "{issuer.url}"\naudiences = ["bench"]\n'
            'roles = [{claim = "groups", value = "bench", role = "bench"}]\n'
            f'[[credentials]]\naccess_key = "{ACCESS}"\nsecret_key = "{SECRET}"\n'
        )
        with serving(config, port) as endpoint:
            measure(root, config, endpoint, issuer, args)


def measure(root: Path, config: Path, endpoint: str, issuer: Issuer, args: Any) -> None:
    keys = {"aws_access_key_id": ACCESS, "aws_secret_access_key": SECRET}
    admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                         **keys)  # fmt: skip
    admin.create_bucket(Bucket="bench")
    for i in range(100):
        admin.put_object(Bucket="bench", Key=f"k{i}", Body=os.urandom(4096))
    account = json.loads(egide(config, "user", "list", "--json"))[0]["arn"].split(":")[4]
    trust = {"Statement": {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                           "Action": "sts:AssumeRole"}}  # fmt: skip
    (root / "trust.json").write_text(json.dumps(trust))
    (root / "read.json").write_text(
        json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}})
    )
    egide(config, "role", "create", "bench", str(root / "trust.json"))
    egide(config, "role", "attach-policy", "bench", "read", str(root / "read.json"))
    role = f"arn:aws:iam::{account}:role/bench"
    sts = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
                       **keys)  # fmt: skip
    unsigned = boto3.client("sts", endpoint_url=endpoint, region_name="us-east-1",
                            config=CONFIG.merge(Config(signature_version=UNSIGNED)))  # fmt: skip
    token = issuer.token()

    def assume(i: int) -> object:
        return sts.assume_role(RoleArn=role, RoleSessionName=f"s{i}")

    def web(i: int) -> object:
        return unsigned.assume_role_with_web_identity(
            RoleArn=role, RoleSessionName=f"w{i}", WebIdentityToken=token
        )

    assume(0), web(0)  # warm: connections, the JWKS fetched once
    print(f"AssumeRole                 {rate(args.calls, args.threads, assume):8.0f} calls/s")
    print(f"AssumeRoleWithWebIdentity  {rate(args.calls, args.threads, web):8.0f} calls/s")

    credentials = assume(1)["Credentials"]  # type: ignore[index]
    session = boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", config=CONFIG,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )  # fmt: skip
    clients = {"plain key": admin, "session token": session}
    runs: dict[str, list[float]] = {name: [] for name in clients}
    for client in clients.values():  # warm-up
        rate(
            200,
            args.threads,
            lambda i, c=client: c.get_object(Bucket="bench", Key=f"k{i % 100}")["Body"].read(),
        )
    for _ in range(args.repeat):
        for name, client in clients.items():
            runs[name].append(
                rate(
                    args.gets,
                    args.threads,
                    lambda i, c=client: c.get_object(Bucket="bench", Key=f"k{i % 100}")[
                        "Body"
                    ].read(),
                )
            )
    medians = {name: statistics.median(r) for name, r in runs.items()}
    for name, median in medians.items():
        print(
            f"4 KiB GET, {name:13}   {median:8.0f} ops/s  (runs: "
            f"{', '.join(f'{r:.0f}' for r in runs[name])})"
        )
    print(f"session token / plain key   {medians['session token'] / medians['plain key']:8.3f}")
    print(f"opening a token alone       {token_cost():8.1f} µs")


def token_cost(calls: int = 20_000) -> float:
    """Microseconds a worker spends opening one session token (AES-GCM and JSON)."""
    from egide.auth.sts.tokens import Session, new_session_key, open_token, seal
    from egide.crypto.keyring import Keyring

    keyring = Keyring(os.urandom(32))
    access, secret = new_session_key()
    policy = json.dumps({"Statement": {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}})
    token = seal(keyring, Session(access, secret, "1" * 12, "r", "AROAX", "s", 4e9, policy))
    began = time.perf_counter()
    for _ in range(calls):
        open_token(keyring, token, access, 0.0)
    return (time.perf_counter() - began) / calls * 1e6


if __name__ == "__main__":
    main()
