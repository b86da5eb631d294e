"""Secrets of access keys, opened once with the keyring from the catalog's sealed credentials.

The SigV4 check is synchronous (egide.auth.sigv4 takes a lookup function), so the secret a
request names is loaded first (`load`), then read from the cache (`get`). A secret stays
cached for the life of the process, as it always has.
"""

from __future__ import annotations

import re

from egide.catalog.base import Catalog
from egide.crypto.keyring import Keyring
from egide.web.request import RequestHead

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/")


def access_key_named(head: RequestHead) -> str:
    """The access key id a request names (header or presigned query), "" when none."""
    match = _CREDENTIAL.search(head.header("authorization") or "")
    access_key = match.group(1) if match else (head.query_value("X-Amz-Credential") or "")
    return access_key.split("/", 1)[0]


class SecretCache:
    """access key id → secret access key, shared by every mounted app of one process."""

    def __init__(self, catalog: Catalog, keyring: Keyring) -> None:
        self._catalog = catalog
        self._keyring = keyring
        self._secrets: dict[str, str] = {}

    async def secret(self, access_key: str) -> str | None:
        """The secret of `access_key`, loaded into the cache if need be; None if unknown."""
        if access_key and access_key not in self._secrets:
            sealed = await self._catalog.get_credential(access_key)
            if sealed is not None:
                self._secrets[access_key] = self._keyring.open_secret(access_key, sealed).decode()
        return self._secrets.get(access_key)

    async def load(self, head: RequestHead) -> None:
        """Load the secret of the access key `head` names, for `get` to find."""
        await self.secret(access_key_named(head))

    def get(self, access_key: str) -> str | None:
        """The cached secret (a `SecretLookup` for egide.auth.sigv4.authenticate)."""
        return self._secrets.get(access_key)
