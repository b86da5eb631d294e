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
import logging
import time
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring
from egide.domain import (
    CREDENTIALS_PREFIX,
    SitesUnavailable,
    credentials_record_name,
    parse_credentials_record_name,
)
from egide.engine.siterecords import open_any, where_listed, writable_sites, write_everywhere
from egide.sites.base import Site

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.credentials")
KIND = "credentials"


def seal(keyring: Keyring, credentials: list[tuple[str, bytes]], number: int) -> bytes:
    document = [[access, sealed.hex()] for access, sealed in credentials]
    return keyring.seal_record(KIND, str(number).encode(), json.dumps(document).encode())


def open_credentials(
    keyring: Keyring, number: int, sealed: bytes
) -> list[tuple[str, bytes]] | None:
    try:
        document = json.loads(keyring.open_record(KIND, str(number).encode(), sealed))
        return [(str(access), bytes.fromhex(secret)) for access, secret in document]
    except (DecryptionError, ValueError, TypeError):
        return None


async def record_credentials(store: ObjectStore) -> bool:
    """Record the credentials if they changed since this process last did; whether it did.
    No site taking the record is logged and tried again next round."""
    credentials = await store.catalog.sealed_credentials()
    digest = hashlib.sha256(json.dumps([[a, s.hex()] for a, s in credentials]).encode())
    if store.recorded_credentials == digest.hexdigest():
        return False
    number = time.time_ns()
    try:
        await write_everywhere(
            await writable_sites(store), credentials_record_name(number),
            seal(store.keyring, credentials, number), "credentials record",
        )  # fmt: skip
    except SitesUnavailable as exc:
        log.warning("%s; trying again next round", exc)
        return False
    store.recorded_credentials = digest.hexdigest()
    return True


async def read_credentials(
    sites: Mapping[str, Site], keyring: Keyring
) -> tuple[list[tuple[str, bytes]] | None, int, list[str]]:
    """The newest credentials record that opens under `keyring` (None if there is none), its
    number, and the problems met."""
    where = await where_listed(sites, CREDENTIALS_PREFIX)
    problems: list[str] = []
    numbered = sorted(
        ((parsed[1], name) for name in where if (parsed := parse_credentials_record_name(name))),
        reverse=True,
    )
    for number, name in numbered:
        found = await open_any(sites, name, where[name], partial(open_credentials, keyring, number))
        if found is not None:
            return found, number, problems
        problems.append(f"{name}: no copy opens under this master key")
    return None, 0, problems
