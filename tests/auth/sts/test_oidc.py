"""ID tokens verified against a real local OpenID Connect issuer's discovery document and keys:
right tokens give their identity; expired, wrongly signed, wrong-audience, wrong-issuer and
unsigned tokens are refused with STS's codes."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator

import pytest
from joserfc.jwk import RSAKey
from tests.oidc_issuer import OidcIssuer

from egide.auth.sts.oidc import (
    ExpiredTokenException,
    IDPCommunicationError,
    InvalidIdentityToken,
    OidcVerifier,
)
from egide.config import OidcProviderConfig, OidcRoleRule


@pytest.fixture
def issuer() -> Iterator[OidcIssuer]:
    served = OidcIssuer()
    yield served
    served.close()


def verifier(issuer: OidcIssuer) -> OidcVerifier:
    rule = OidcRoleRule(claim="groups", value="finance", role="finance-reader")
    return OidcVerifier(
        [OidcProviderConfig(issuer=issuer.url, audiences=["egide-console"], roles=[rule])]
    )


def test_a_right_token_gives_its_identity_and_roles(issuer: OidcIssuer) -> None:
    check = verifier(issuer)
    identity = asyncio.run(check.verify(issuer.token(groups=["finance", "staff"])))
    assert (identity.subject, identity.audience, identity.provider_id) == (
        "alice", "egide-console", issuer.host
    )  # fmt: skip
    assert check.provider_roles(identity) == {"finance-reader"}
    other = asyncio.run(check.verify(issuer.token(aud=["other", "egide-console"], groups="x")))
    assert other.audience == "egide-console" and check.provider_roles(other) == set()
    assert issuer.jwks_fetches == 1  # kept


@pytest.mark.parametrize(
    ("claims", "error"),
    [
        ({"exp": 1_000_000}, ExpiredTokenException),
        ({"aud": "someone-else"}, InvalidIdentityToken),
        ({"iss": "http://127.0.0.1:1"}, InvalidIdentityToken),
        ({"sub": None}, InvalidIdentityToken),
        ({"nbf": 4_000_000_000}, InvalidIdentityToken),
    ],
)
def test_a_token_with_wrong_claims_is_refused(
    issuer: OidcIssuer, claims: dict[str, object], error: type[Exception]
) -> None:
    with pytest.raises(error):
        asyncio.run(verifier(issuer).verify(issuer.token(**claims)))


def test_a_wrongly_signed_or_unsigned_token_is_refused(issuer: OidcIssuer) -> None:
    check = verifier(issuer)
    forged = issuer.token(key=RSAKey.generate_key(2048, parameters={"kid": "test-1"}))
    with pytest.raises(InvalidIdentityToken, match="signature"):
        asyncio.run(check.verify(forged))
    _, payload, _ = issuer.token().split(".")
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none"}).encode()).decode().rstrip("=")
    with pytest.raises(InvalidIdentityToken, match="algorithm"):
        asyncio.run(check.verify(f"{none}.{payload}."))
    hs = base64.urlsafe_b64encode(json.dumps({"alg": "HS256"}).encode()).decode().rstrip("=")
    with pytest.raises(InvalidIdentityToken, match="algorithm"):
        asyncio.run(check.verify(f"{hs}.{payload}.c2ln"))
    with pytest.raises(InvalidIdentityToken):
        asyncio.run(check.verify("not-a-jwt"))


def test_an_unreachable_provider_is_said(issuer: OidcIssuer) -> None:
    token = issuer.token()
    issuer.close()
    with pytest.raises(IDPCommunicationError):
        asyncio.run(verifier(issuer).verify(token))
