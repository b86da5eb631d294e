"""The credentials record: every access key and its sealed secret, under the master key, on
every site.

Access keys created with `egide credentials create` (or printed at the first start) live in
the catalog, their secrets sealed under the master key. Without a copy on the sites, a catalog
rebuilt from them would start with a new pair, and every client would need new keys. So each
server's housekeeping round records the credentials when they differ from what that process
last recorded (at least once per start): `creds-<number>`, the time in nanoseconds, sealed as
a whole under the master key, so that providers see neither the access keys nor how many
there are. A rebuild installs the newest record that opens; garbage collection deletes the
older ones. The secrets in it are sealed under the master key as in the catalog: nothing here
is readable without the key that already opens every byte of data.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from functools import partial

from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring
from egide.domain import (
    CREDENTIALS_PREFIX,
    credentials_record_name,
    parse_credentials_record_name,
)
from egide.engine.siterecords import read_newest, write_or_wait
from egide.engine.vault import Vault
from egide.sites.base import Site

KIND = "credentials"
#: Access keys with their secrets sealed under the master key, as the catalog holds them.
Credentials = list[tuple[str, bytes]]


def seal(keyring: Keyring, credentials: Credentials, number: int) -> bytes:
    document = [[access, sealed.hex()] for access, sealed in credentials]
    return keyring.seal_record(KIND, str(number).encode(), json.dumps(document).encode())


def open_credentials(keyring: Keyring, number: int, sealed: bytes) -> Credentials | None:
    try:
        document = json.loads(keyring.open_record(KIND, str(number).encode(), sealed))
        return [(str(access), bytes.fromhex(secret)) for access, secret in document]
    except (DecryptionError, ValueError, TypeError):
        return None


async def record_credentials(vault: Vault) -> bool:
    """Record the credentials if they changed since this process last did; whether it did.
    No site taking the record is logged and tried again next round."""
    credentials = await vault.catalog.sealed_credentials()
    digest = hashlib.sha256(json.dumps([[a, s.hex()] for a, s in credentials]).encode())
    if vault.recorded_credentials == digest.hexdigest():
        return False
    number = time.time_ns()
    sealed = seal(vault.buckets.keyring, credentials, number)
    if not await write_or_wait(vault, credentials_record_name(number), sealed, "credentials"):
        return False
    vault.recorded_credentials = digest.hexdigest()
    return True


async def read_credentials(
    sites: Mapping[str, Site], keyring: Keyring
) -> tuple[Credentials | None, int, list[str]]:
    """The newest credentials record that opens under `keyring` (None if there is none), its
    number, and the problems met."""

    def opener(_: str, number: int) -> Callable[[bytes], Credentials | None]:
        return partial(open_credentials, keyring, number)

    found, problems = await read_newest(
        sites, CREDENTIALS_PREFIX, parse_credentials_record_name, opener
    )
    number, credentials = found.get(b"", (0, None))
    return credentials, number, problems
