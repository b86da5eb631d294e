"""OpenID Connect ID tokens verified against their provider's keys, for
AssumeRoleWithWebIdentity (docs/sts.md).

The provider is the configured one whose issuer is the token's `iss`. Its keys (JWKS) come
from its discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`), fetched
with a timeout, kept an hour, fetched again when a token names a key id not among them (at most
once every ten seconds, so that tokens with made-up key ids cannot make the gateway hammer the
provider). Only asymmetric signatures are accepted (RS256, ES256 …; never `none` nor HS*, whose
key would be the public client secret); `iss`, `aud`, `exp` are required and checked, `nbf` and
`iat` too when present, with a minute of clock skew.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import ExpiredTokenError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import extract_compact

from egide.clock import SYSTEM_CLOCK, Clock
from egide.config import OidcProviderConfig
from egide.web.errors import http_error

InvalidIdentityToken = http_error("InvalidIdentityToken", 400, "The ID token is not valid.")
ExpiredTokenException = http_error("ExpiredTokenException", 400, "Token expired.")
IDPCommunicationError = http_error(
    "IDPCommunicationError", 400, "The identity provider could not be reached."
)

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
#: Seconds of clock difference tolerated on exp, nbf and iat.
LEEWAY = 60
KEYS_LIFETIME = 3600.0
REFETCH_AFTER = 10.0
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Identity:
    """A verified ID token: its provider, claims and the audience it was issued for."""

    provider: OidcProviderConfig
    claims: dict[str, Any]
    audience: str

    @property
    def subject(self) -> str:
        return str(self.claims["sub"])

    @property
    def provider_id(self) -> str:
        """The issuer without its scheme, as AWS names a provider (`<host>/<path>`), which is
        also the prefix of its condition keys (`<provider_id>:aud`, `:sub`)."""
        parts = urlsplit(self.provider.issuer)
        return parts.netloc + parts.path


@dataclass
class _Keys:
    keys: KeySet
    fetched: float
    tried: float = field(default=0.0)


def _get_json(url: str, timeout: float) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as answer:
        return json.loads(answer.read(MAX_DOCUMENT_BYTES + 1)[:MAX_DOCUMENT_BYTES])


class OidcVerifier:
    """Verifies ID tokens of the configured providers; one per server process."""

    def __init__(self, providers: list[OidcProviderConfig], *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._providers = {p.issuer: p for p in providers}
        self._clock = clock
        self._keys: dict[str, _Keys] = {}

    async def _fetch(self, provider: OidcProviderConfig) -> KeySet:
        def run() -> KeySet:
            found = _get_json(
                f"{provider.issuer}/.well-known/openid-configuration", provider.timeout_seconds
            )
            uri = found.get("jwks_uri") if isinstance(found, dict) else None
            if not isinstance(uri, str) or urlsplit(uri).scheme not in ("https", "http"):
                raise ValueError("the discovery document has no jwks_uri")
            if urlsplit(uri).scheme == "http" and urlsplit(provider.issuer).scheme != "http":
                raise ValueError("the jwks_uri of an https issuer is not https")
            return KeySet.import_key_set(_get_json(uri, provider.timeout_seconds))

        try:
            return await asyncio.to_thread(run)
        except (OSError, ValueError, JoseError) as exc:
            raise IDPCommunicationError(
                f"Could not fetch the keys of {provider.issuer}: {exc}"
            ) from None

    async def _key_set(self, provider: OidcProviderConfig, kid: str | None) -> KeySet:
        now = self._clock.monotonic()
        held = self._keys.get(provider.issuer)
        known = held is not None and (kid is None or any(k.kid == kid for k in held.keys.keys))
        if held is not None and known and now - held.fetched < KEYS_LIFETIME:
            return held.keys
        if held is not None and now - held.tried < REFETCH_AFTER:
            return held.keys  # fetched a moment ago: an unknown kid stays unknown
        keys = await self._fetch(provider)
        self._keys[provider.issuer] = _Keys(keys, now, now)
        return keys

    async def verify(self, token: str) -> Identity:
        """The identity an ID token proves. Raises InvalidIdentityToken (unknown issuer, bad
        signature, wrong audience …), ExpiredTokenException, IDPCommunicationError."""
        try:
            compact = extract_compact(token.encode())
            header = compact.protected
            unverified = json.loads(compact.payload)
        except (JoseError, ValueError, TypeError):
            raise InvalidIdentityToken("The ID token is not a signed JWT.") from None
        if header.get("alg") not in ALGORITHMS:
            alg = header.get("alg")
            raise InvalidIdentityToken(f"The ID token's algorithm {alg!r} is refused.")
        issuer = unverified.get("iss") if isinstance(unverified, dict) else None
        provider = self._providers.get(str(issuer).rstrip("/")) if issuer else None
        if provider is None:
            raise InvalidIdentityToken(f"No OpenIDConnect provider found for {issuer}.")
        keys = await self._key_set(provider, header.get("kid"))
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except JoseError:
            raise InvalidIdentityToken("The ID token's signature is not valid.") from None
        claims = decoded.claims
        registry = jwt.JWTClaimsRegistry(
            now=int(self._clock.time()),
            leeway=LEEWAY,
            iss={"essential": True, "value": str(issuer)},
            aud={"essential": True, "values": provider.audiences},
            exp={"essential": True},
            sub={"essential": True},
        )
        try:
            registry.validate(claims)
        except ExpiredTokenError:
            raise ExpiredTokenException() from None
        except JoseError as exc:
            raise InvalidIdentityToken(f"The ID token is not valid: {exc}") from None
        aud = claims["aud"]
        audience = next(a for a in ([aud] if isinstance(aud, str) else aud)
                        if a in provider.audiences)  # fmt: skip
        return Identity(provider, dict(claims), audience)

    def provider_roles(self, identity: Identity) -> set[str]:
        """The roles the provider's rules give to the token's claims."""
        found = set()
        for rule in identity.provider.roles:
            value = identity.claims.get(rule.claim)
            held = value if isinstance(value, list) else [value]
            if rule.value in [str(v) for v in held if v is not None]:
                found.add(rule.role)
        return found
