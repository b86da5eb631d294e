"""Is a site there now? One real request to it, timed: what `egide site list` shows and what
`egide policy explain` counts as down when no server is asked."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from egide.sites.base import Site, SiteError
from egide.sites.local import MARKER, LocalSite

DEFAULT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Probe:
    reachable: bool
    #: How long the probe took, in milliseconds (also when it failed).
    latency_ms: float
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "reachable": self.reachable,
            "latency_ms": round(self.latency_ms, 3),
            "error": self.error,
        }


def _local(site: LocalSite) -> None:
    """A directory site is there when its marker and shard directory are: a lost disk or an
    unmounted volume fails here, where a size query on a missing file would only say None."""
    shards = site.root / "shards"
    if not (site.root / MARKER).is_file() or not shards.is_dir():
        raise SiteError(
            f"site {site.name}: {site.root} is not an Égide site directory (missing, or the disk "
            "not mounted? a new disk mounted there is prepared when the server starts)"
        )
    next(shards.iterdir(), None)  # the directory can be read


async def probe(site: Site, timeout: float = DEFAULT_TIMEOUT) -> Probe:
    """Reach `site` once: a look at its directory, or a HEAD of its marker object (a provider
    that answers at all, even "not found", is reachable; refused credentials are not)."""
    started = time.perf_counter()
    try:
        if isinstance(site, LocalSite):
            await asyncio.wait_for(asyncio.to_thread(_local, site), timeout)
        else:
            await asyncio.wait_for(site.size(MARKER), timeout)
    except TimeoutError:
        elapsed = (time.perf_counter() - started) * 1000
        return Probe(False, elapsed, f"no answer within {timeout:g} s")
    except (SiteError, OSError) as exc:
        return Probe(False, (time.perf_counter() - started) * 1000, str(exc))
    return Probe(True, (time.perf_counter() - started) * 1000)


async def probe_all(sites: dict[str, Site], timeout: float = DEFAULT_TIMEOUT) -> dict[str, Probe]:
    """Every site at once, so that one slow provider costs one timeout, not one per site."""
    results = await asyncio.gather(*(probe(site, timeout) for site in sites.values()))
    return dict(zip(sites, results, strict=True))
