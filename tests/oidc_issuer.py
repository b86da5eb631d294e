"""`OidcIssuer`: a small OpenID Connect provider of the tests' own, on a local port: its
discovery document and JWKS served over real HTTP, ID tokens signed with its RSA key (joserfc)."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from joserfc import jwt
from joserfc.jwk import RSAKey


class OidcIssuer:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "test-1", "use": "sig"})
        self.jwks_fetches = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/.well-known/openid-configuration":
                    document: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                elif self.path == "/jwks":
                    issuer.jwks_fetches += 1
                    document = {"keys": [issuer.key.as_dict(private=False)]}
                else:
                    self.send_error(404)
                    return
                body = json.dumps(document).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        """The issuer without its scheme: AWS's provider id, and its condition keys' prefix."""
        return self.url.removeprefix("http://")

    def token(self, *, key: RSAKey | None = None, alg: str = "RS256", **claims: Any) -> str:
        """An ID token for `sub` alice, audience egide-console, valid ten minutes, unless the
        claims given say otherwise (None removes a claim)."""
        now = int(time.time())
        payload = {"iss": self.url, "sub": "alice", "aud": "egide-console", "iat": now,
                   "exp": now + 600, **claims}  # fmt: skip
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode({"alg": alg, "kid": "test-1"}, payload, key or self.key)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
