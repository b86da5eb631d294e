"""Session tokens: what AssumeRole seals opens only under the same organisation's master key,
unaltered, for its own access key, until its expiry."""

from __future__ import annotations

import pytest

from egide.auth.errors import ExpiredToken, InvalidToken
from egide.auth.sts.tokens import Session, new_session_key, open_token, seal
from egide.crypto import aead
from egide.crypto.keyring import Keyring


def session(expires: float = 2000.0) -> Session:
    access, secret = new_session_key()
    return Session(access, secret, "123456789012", "writer", "AROAX", "s1", expires, '{"a":1}')


def test_a_token_opens_to_its_session_and_principal() -> None:
    keyring = Keyring(aead.new_key())
    made = session()
    opened = open_token(keyring, seal(keyring, made), made.access_key, now=1999.0)
    assert opened == made
    principal = opened.principal()
    assert (principal.role, principal.role_id, principal.session) == ("writer", "AROAX", "s1")
    assert principal.arn == "arn:aws:sts::123456789012:assumed-role/writer/s1"
    assert made.access_key.startswith("ASIA") and len(made.access_key) == 20


def test_an_expired_altered_foreign_or_borrowed_token_is_refused() -> None:
    keyring = Keyring(aead.new_key())
    made = session()
    token = seal(keyring, made)
    with pytest.raises(ExpiredToken):
        open_token(keyring, token, made.access_key, now=2000.0)
    altered = token[:30] + ("A" if token[30] != "A" else "B") + token[31:]
    with pytest.raises(InvalidToken):
        open_token(keyring, altered, made.access_key, now=0.0)
    with pytest.raises(InvalidToken):
        open_token(Keyring(aead.new_key()), token, made.access_key, now=0.0)
    with pytest.raises(InvalidToken):
        open_token(keyring, token, "ASIAOTHER", now=0.0)
    with pytest.raises(InvalidToken):
        open_token(keyring, "garbage", made.access_key, now=0.0)


def test_a_token_sealed_before_a_master_key_rotation_still_opens() -> None:
    old, new = aead.new_key(), aead.new_key()
    made = session()
    token = seal(Keyring(old), made)
    assert open_token(Keyring(new, [old]), token, made.access_key, now=0.0) == made
