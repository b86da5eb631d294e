"""The store's background round in every server process: abandoned uploads aborted, the trash
emptied, lifecycle rules applied, and bucket settings and credentials recorded on the sites.

A client of the store beside the other services (lifecycle, changes): the store imports none
of them, so that the engine's modules depend on each other one way only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from egide.engine.credentialrecords import record_credentials
from egide.engine.lifecycle import apply_lifecycle
from egide.engine.settingsrecords import record_settings

if TYPE_CHECKING:
    from egide.engine.store import ObjectStore

log = logging.getLogger("egide.store")


async def run_housekeeping(store: ObjectStore, every: float = 10.0) -> None:
    """Forever, every `every` seconds (lifecycle every `store.lifecycle_interval`); a round
    that fails is logged and the next one runs."""
    next_lifecycle = store.clock.monotonic()  # the first pass on the first round
    while True:
        await asyncio.sleep(min(every, store.lifecycle_interval))
        try:
            if store.upload_expiry:
                await store.multipart.abort_abandoned(store.upload_expiry)
            await store.empty_trash()
            if store.clock.monotonic() >= next_lifecycle:
                next_lifecycle = store.clock.monotonic() + store.lifecycle_interval
                await apply_lifecycle(store, store.clock.time(), store.lifecycle_day)
            # Last: sites down must not hold up the rest.
            await record_settings(store.vault)
            await record_credentials(store.vault)
        except Exception:
            log.exception("housekeeping failed")
