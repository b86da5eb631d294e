"""Liveness and readiness, for load balancers and orchestrators: `/_egide/health/live` and
`/_egide/health/ready`, unsigned (a probe carries no credentials) and cheap.

  GET /_egide/health/live   200 {"status": "live"}: this process answers.
  GET /_egide/health/ready  200 when the catalog answers and the default placement policy can
                            place a new version on sites that take writes; else 503, the body
                            naming what is not ready.

Ready asks each site to take a small file (written, then deleted: a site that can be read but
not written, a full disk or a read-only mount, is not ready) and the catalog a lookup. Both are
reused `[metrics] ready_cache_seconds` (5 s), so a probe every second costs one check per
interval per process, and concurrent probes share one check. The body names sites, never their
addresses or errors: the errors go to the server's log.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass

from egide.engine.store import ObjectStore
from egide.placement import Infeasible, solve
from egide.sites.base import Site, SiteError, write_file
from egide.web.dispatch import Call, json_response, send_response
from egide.web.http import Send

log = logging.getLogger("egide.health")

PREFIX = "/_egide/health/"
#: Seconds a site or the catalog may take to answer a readiness check.
CHECK_TIMEOUT = 5.0


@dataclass(frozen=True)
class SiteCheck:
    writable: bool
    seconds: float


@dataclass(frozen=True)
class Readiness:
    """One check: the catalog, each site, and whether the default policy can place."""

    catalog: bool
    sites: dict[str, SiteCheck]
    #: k+m of the default policy, and whether a placement exists over the writable sites.
    needed: int
    placeable: bool
    checked_at: float

    @property
    def ready(self) -> bool:
        return self.catalog and self.placeable

    def document(self) -> dict[str, object]:
        """The JSON body: names and states only (no address, no error text)."""
        problems = []
        if not self.catalog:
            problems.append("catalog: not reachable")
        unwritable = sorted(name for name, check in self.sites.items() if not check.writable)
        if not self.placeable:
            problems.append(
                f"sites: the default policy needs {self.needed} sites that take writes; "
                f"{len(self.sites) - len(unwritable)} of {len(self.sites)} do"
            )
        return {
            "status": "ready" if self.ready else "not ready",
            "catalog": "ok" if self.catalog else "unreachable",
            "sites": {
                name: "writable" if check.writable else "not writable"
                for name, check in sorted(self.sites.items())
            },
            "needed_sites": self.needed,
            "problems": problems,
        }


class ReadinessCheck:
    """The cached readiness of one process (see the module docstring)."""

    def __init__(self, store: ObjectStore, cache_seconds: float) -> None:
        self.store = store
        self.cache_seconds = cache_seconds
        self._last: Readiness | None = None
        self._running: asyncio.Task[Readiness] | None = None
        self._probe_name = f"probe-{os.getpid()}-{os.urandom(4).hex()}"

    async def current(self) -> Readiness:
        last = self._last
        if last is not None and time.monotonic() - last.checked_at < self.cache_seconds:
            return last
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._check())
        # Shielded: a probe whose client left does not cancel the check others wait for.
        self._last = await asyncio.shield(self._running)
        return self._last

    async def _check(self) -> Readiness:
        store = self.store
        retired = await _retired(store)
        sites = [site for site in store.sites.values() if site.name not in retired]
        catalog, checks = await asyncio.gather(
            _catalog_answers(store), asyncio.gather(*(self._site(site) for site in sites))
        )
        results = dict(zip((site.name for site in sites), checks, strict=True))
        placer = store.placer
        policy = placer.policies.default or placer.fallback
        down = {name for name, check in results.items() if not check.writable} | set(retired)
        try:
            solve(policy, placer.profiles, unavailable=down, seed=b"ready")
            placeable = True
        except Infeasible:
            placeable = False
        return Readiness(bool(catalog), results, policy.k + policy.m, placeable, time.monotonic())

    async def _site(self, site: Site) -> SiteCheck:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self._write_and_delete(site), CHECK_TIMEOUT)
        except (SiteError, OSError, TimeoutError) as exc:
            log.warning("readiness: site %s does not take writes: %s", site.name, exc or "timeout")
            return SiteCheck(False, time.perf_counter() - started)
        return SiteCheck(True, time.perf_counter() - started)

    async def _write_and_delete(self, site: Site) -> None:
        await write_file(site, self._probe_name, b"egide readiness probe\n")
        await site.delete(self._probe_name)


async def _retired(store: ObjectStore) -> frozenset[str]:
    try:
        return await asyncio.wait_for(store.placer.retired(), CHECK_TIMEOUT)
    except Exception:  # the catalog check reports it
        return frozenset()


async def _catalog_answers(store: ObjectStore) -> bool:
    try:
        await asyncio.wait_for(store.catalog.get_job(0), CHECK_TIMEOUT)
    except Exception as exc:  # any failure is "not ready", told in the log
        log.warning("readiness: the catalog does not answer: %s", exc or "timeout")
        return False
    return True


class HealthApp:
    """Mounted under PREFIX: live and ready, GET or HEAD, nothing to sign."""

    def __init__(self, readiness: ReadinessCheck) -> None:
        self.readiness = readiness

    async def serve(self, call: Call, send: Send) -> None:
        head = call.head
        path = head.path[len(PREFIX) :].strip("/")
        call.exchange.operation = "Health"
        if head.method not in ("GET", "HEAD"):
            response = json_response(
                405, {"code": "MethodNotAllowed", "message": f"{head.method}: GET or HEAD only"}
            )
        elif path == "live":
            response = json_response(200, {"status": "live"})
        elif path == "ready":
            readiness = await self.readiness.current()
            response = json_response(200 if readiness.ready else 503, readiness.document())
        else:
            response = json_response(
                404, {"code": "NotFound", "message": f"no such resource: {head.path}"}
            )
        response.headers["cache-control"] = "no-store"
        await send_response(response, call, send)
