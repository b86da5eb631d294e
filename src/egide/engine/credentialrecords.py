"""The credentials record: the account, its users and groups, every access key with its status,
expiry and sealed secret, under the master key, on every site.

Access keys created with `egide credentials create` (or printed at the first start) live in
the catalog, their secrets sealed under the master key. Without a copy on the sites, a catalog
rebuilt from them would start with a new pair, and every client would need new keys. So each
server's housekeeping round records the credentials when they differ from what that process
last recorded (at least once per start): `creds-<number>`, the time in nanoseconds, sealed as
a whole under the master key, so that providers see neither the access keys nor how many
there are. A rebuild installs the newest record that opens; garbage collection deletes the
older ones. The secrets in it are sealed under the master key as in the catalog: nothing here
is readable without the key that already opens every byte of data.

Version 2 (decision 0029) is a JSON object with the users, groups and keys; version 1, a list
of [access key, sealed secret] written before users existed, still opens: its keys are the
admin's, Active, with no expiry and no known creation time (docs/format.md).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping
from functools import partial

from egide.catalog.identities import Identities
from egide.crypto.aead import DecryptionError
from egide.crypto.keyring import Keyring
from egide.domain import (
    ADMIN_USER,
    CREDENTIALS_PREFIX,
    KEY_ACTIVE,
    AccessKey,
    Group,
    Role,
    User,
    credentials_record_name,
    parse_credentials_record_name,
)
from egide.engine.siterecords import read_newest, write_or_wait
from egide.engine.vault import Vault
from egide.sites.base import Site

KIND = "credentials"
#: The users, groups and access keys with their secrets sealed under the master key, as the
#: catalog holds them.
Credentials = Identities
VERSION = 2


def document_of(identities: Identities) -> dict[str, object]:
    """The record's JSON document (version 2)."""
    return {
        "v": VERSION,
        "account": identities.account,
        "users": [[u.name, u.id, u.created] for u in identities.users],
        "groups": [[g.name, g.id, g.created, list(g.members)] for g in identities.groups],
        "keys": [
            [k.access_key, sealed.hex(), k.user, k.status, k.created, k.expires]
            for k, sealed in identities.keys
        ],
        "policies": [list(attached) for attached in identities.policies],
        # Roles (STS) came within version 2: a reader from before them ignores the key.
        "roles": [[r.name, r.id, r.created, r.trust_policy, r.max_session]
                  for r in identities.roles],
    }  # fmt: skip


def identities_of(document: object) -> Identities:
    """A record's document, of version 2 or 1, as identities."""
    if isinstance(document, list):  # version 1: before users, every key the admin's
        keys = tuple(
            (AccessKey(str(access), ADMIN_USER, KEY_ACTIVE, 0.0), bytes.fromhex(secret))
            for access, secret in document
        )
        return Identities(None, (), (), keys)
    if not isinstance(document, dict) or document.get("v") != VERSION:
        raise ValueError("not a credentials record this Égide reads")
    return Identities(
        str(document["account"]),
        tuple(User(str(n), str(i), float(c)) for n, i, c in document["users"]),
        tuple(
            Group(str(n), str(i), float(c), tuple(map(str, members)))
            for n, i, c, members in document["groups"]
        ),
        tuple(
            (AccessKey(str(a), str(u), str(st), float(c), None if e is None else float(e)),
             bytes.fromhex(sealed))
            for a, sealed, u, st, c, e in document["keys"]
        ),
        tuple((str(k), str(n), str(p), str(d)) for k, n, p, d in document.get("policies", [])),
        tuple(Role(str(n), str(i), float(c), str(t), int(m))
              for n, i, c, t, m in document.get("roles", [])),
    )  # fmt: skip


def seal(keyring: Keyring, credentials: Credentials, number: int) -> bytes:
    document = json.dumps(document_of(credentials)).encode()
    return keyring.seal_record(KIND, str(number).encode(), document)


def open_credentials(keyring: Keyring, number: int, sealed: bytes) -> Credentials | None:
    try:
        return identities_of(json.loads(keyring.open_record(KIND, str(number).encode(), sealed)))
    except (DecryptionError, ValueError, TypeError, KeyError):
        return None


async def record_credentials(vault: Vault) -> bool:
    """Record the credentials if they changed since this process last did; whether it did.
    No site taking the record is logged and tried again next round."""
    credentials = await vault.catalog.identities()
    digest = hashlib.sha256(json.dumps(document_of(credentials)).encode())
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
