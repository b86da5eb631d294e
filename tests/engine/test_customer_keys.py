"""egide.engine.customer_keys: the customer key as an extra wrapping of a data key."""

from __future__ import annotations

import os

import pytest

from egide.crypto import aead
from egide.engine.customer_keys import (
    ALGORITHM_HEADER,
    FINGERPRINT_HEADER,
    CustomerKeyRequired,
    matches,
    open_data_key,
    seal_data_key,
    stored_headers,
    under_customer_key,
)

KEY, OTHER, OWNER = os.urandom(32), os.urandom(32), os.urandom(16)


def test_the_stored_headers_tell_the_key_without_holding_it() -> None:
    headers = stored_headers(KEY)
    assert headers[ALGORITHM_HEADER] == "AES256" and under_customer_key(headers)
    assert KEY.hex() not in headers[FINGERPRINT_HEADER]
    assert matches(KEY, headers) and not matches(OTHER, headers)
    # Salted: the same key gives another fingerprint each time.
    assert stored_headers(KEY)[FINGERPRINT_HEADER] != headers[FINGERPRINT_HEADER]
    assert not matches(KEY, {FINGERPRINT_HEADER: "not hex:00"})


def test_the_data_key_opens_with_the_customer_key_only() -> None:
    data_key = aead.new_key()
    inner = seal_data_key(KEY, OWNER, data_key)
    headers = stored_headers(KEY)
    assert open_data_key(KEY, OWNER, inner, headers) == data_key
    for wrong in (None, OTHER):
        with pytest.raises(CustomerKeyRequired):
            open_data_key(wrong, OWNER, inner, headers)
    with pytest.raises(aead.DecryptionError):  # bound to its version
        open_data_key(KEY, os.urandom(16), inner, headers)


def test_a_data_key_without_a_customer_key_is_returned_as_it_is() -> None:
    data_key = aead.new_key()
    assert open_data_key(None, OWNER, data_key, {"content-type": "x"}) == data_key
