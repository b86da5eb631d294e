"""Access keys: the credentials S3 and the admin API accept, their secrets sealed under the
master key in the catalog.

Adding one is one call that does all it needs: the sealed secret in the catalog, the
credentials record on the sites when the service has a store to write it with (otherwise the
next housekeeping round of a server writes it: egide.engine.credentialrecords), and the event
(CREDENTIALS_CHANGED, naming the access key, never the secret).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from egide.catalog.base import Catalog
from egide.crypto.keyring import Keyring
from egide.engine.events import EventBus, EventKind
from egide.engine.identities import new_credential

__all__ = ["CredentialService", "new_credential"]


class CredentialService:
    def __init__(
        self,
        catalog: Catalog,
        keyring: Keyring,
        events: EventBus | None = None,
        *,
        record: Callable[[], Awaitable[bool]] | None = None,
    ) -> None:
        self._catalog = catalog
        self._keyring = keyring
        #: A command's own service gets a bus of its own (nobody listens in a command).
        self.events = events if events is not None else EventBus()
        #: Writes the credentials record on the sites (the store's; None before one exists).
        self._record = record

    async def add(self, access: str, secret: str) -> None:
        """Accept `access` with `secret` from now on."""
        sealed = self._keyring.seal_secret(access, secret.encode())
        await self._catalog.add_credential(access, sealed)
        self.events.announce(EventKind.CREDENTIALS_CHANGED, "", access_key=access, detail="added")
        if self._record is not None:
            await self._record()

    async def create(self) -> tuple[str, str]:
        """A new access key pair, added; the secret is shown once by the caller."""
        access, secret = new_credential()
        await self.add(access, secret)
        return access, secret

    async def exists(self, access: str) -> bool:
        return await self._catalog.get_credential(access) is not None

    async def count(self) -> int:
        return await self._catalog.count_credentials()

    async def ensure(self, configured: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """At a start: add the configuration's pairs not yet known, and a new pair if there is
        no credential at all; the pairs created (to print once)."""
        for access, secret in configured:
            if not await self.exists(access):
                await self.add(access, secret)
        if await self.count():
            return []
        return [await self.create()]
