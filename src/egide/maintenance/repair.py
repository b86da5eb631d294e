"""Repair: bring every version back to k+m healthy shards, on sites its policy allows.

One version at a time: find which pieces are missing, truncated, rotten or on a site that is
gone; rebuild them from k good ones (egide.maintenance.shards, no key needed) — in place when
their site is healthy, else on sites chosen by egide.maintenance.relocate; read each new file
back; then one conditional catalog change points the version at them. A version deleted or
changed meanwhile keeps its state and the new files go to the trash; a repair run twice finds
nothing left to do. The same path moves shards for evacuation and rebalancing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Collection
from dataclasses import dataclass, field, replace

from egide.domain import Job, ObjectVersion
from egide.engine.manifest import COMPLETION_SEQ
from egide.engine.placing import retired_sites, unprofiled
from egide.inspection.scan import completion_records, shard_files
from egide.inspection.verify import verify_shard
from egide.maintenance.damage import Damage, Place, inspect
from egide.maintenance.jobs import JobContext, Step, job_kind
from egide.maintenance.relocate import NoRelocation, align, relocate
from egide.maintenance.shards import RewriteError, Written, rewrite_part
from egide.maintenance.spread import spread_records
from egide.placement import Placement
from egide.placement.compliance import check
from egide.placement.solver import Infeasible, solve

log = logging.getLogger("egide.repair")

#: Versions looked at together in one step (their checks and rebuilds overlap).
BATCH = 16


@dataclass
class Outcome:
    """What happened to one version."""

    state: str  # healthy, repaired, unrecoverable, stuck (no placement), changed
    note: str = ""
    bytes: int = 0
    #: The damaged files found: (part attempt, piece index) → what is wrong.
    bad: dict[Place, str] = field(default_factory=dict)


async def mend(
    ctx: JobContext,
    version: ObjectVersion,
    *,
    deep: bool = False,
    leaving: Collection[str] = (),
    rebalance: bool = False,
) -> Outcome:
    """Repair one version; with `leaving`, also move its pieces off those sites (evacuation);
    with `rebalance`, also move pieces so the placement obeys the bucket's current policy."""
    damage = await inspect(version, ctx.sites, deep=deep)
    bad = damage.bad
    shortfall = damage.shortfall()
    if shortfall is not None:
        await ctx.catalog.mark_damaged(version.version_id, shortfall)
        return Outcome("unrecoverable", shortfall, bad=bad)
    if not bad and not rebalance and not set(leaving) & set(version.sites):
        return await _healthy(ctx, version)  # nothing to move: no placement looked up
    down = await _unavailable(ctx) | damage.unreachable | set(leaving)
    down |= {name for name in version.sites if name not in ctx.sites}
    refused = _refused(ctx)
    down |= refused
    for _ in range(len(ctx.sites)):  # each round rules out a site that refused new files
        outcome = await _mend_with(ctx, damage, down, set(leaving), rebalance)
        if isinstance(outcome, Outcome):
            return outcome
        down.add(outcome)
        refused.add(outcome)  # for the rest of this job
    return Outcome("stuck", "every site refused new files", bad=bad)


async def _mend_with(
    ctx: JobContext, damage: Damage, down: set[str], leaving: set[str], rebalance: bool
) -> Outcome | str:
    """One attempt of `mend` with these sites ruled out; the name of a site that refused a
    new file, to try again without it."""
    version, bad, damaged = damage.version, damage.bad, damage.pieces
    moving = {
        i
        for i, site in enumerate(version.sites)
        if site in down and (i in damaged or site in leaving)
    }
    targets = {i: version.sites[i] for i in damaged if i not in moving}
    note = ""
    try:
        moves = await _moves(ctx, version, moving, down, rebalance)
    except NoRelocation as exc:
        moves = {}
        note = f"no site allowed by the policy can take pieces {sorted(moving)}: {exc}"
    targets.update(moves)
    if version.pack is not None and targets:
        # A packed version leaves its pack: every piece becomes a file of its own.
        targets = {i: targets.get(i, site) for i, site in enumerate(version.sites)}
    if not targets:
        if note:
            return Outcome("stuck", note, bad=bad)
        return await _healthy(ctx, version, bad)
    try:
        written, unhealed = await _rewrite(ctx, damage, targets, set(moves))
    except RewriteError as exc:
        if exc.target is not None and exc.target not in down:
            log.warning("%s: %s; choosing another site", _name(version), exc)
            return exc.target
        await ctx.catalog.mark_damaged(version.version_id, str(exc))
        return Outcome("stuck", f"rewrite failed: {exc}", bad=bad)
    sites = tuple(targets.get(i, site) for i, site in enumerate(version.sites))
    if sites != version.sites or version.pack is not None:
        packed = version.pack is not None
        fresh = [(w.site, w.file) for w in written if packed or w.index in moves]
        owned = [*shard_files(version), *completion_records(version)]
        replaced = [(f.site, f.file) for f in owned if f.index in moves]
        if not await ctx.catalog.move_shards(version, sites, [] if packed else replaced, fresh):
            return Outcome("changed", "the version changed meanwhile; nothing moved", bad=bad)
    if unhealed:
        await ctx.catalog.mark_damaged(version.version_id, unhealed)
        note = (note + "; " if note else "") + unhealed
    else:
        await ctx.catalog.forget_damaged([version.version_id])
    done = ", ".join(
        f"piece {w.index}{_part(version, w.part)} → {w.site}"
        for w in sorted(written, key=lambda w: (w.part, w.index))
    )
    total = sum(w.bytes for w in written)
    state = "stuck" if note else "repaired" if bad else "moved"
    return Outcome(state, (note + "; " if note else "") + done, total, bad)


def _part(version: ObjectVersion, seq: int) -> str:
    if not version.parts:
        return ""
    if seq == COMPLETION_SEQ:
        return " (completion record)"
    return "".join(f" of part {p.number}" for p in version.parts if p.seq == seq)


async def _healthy(
    ctx: JobContext, version: ObjectVersion, bad: dict[Place, str] | None = None
) -> Outcome:
    await ctx.catalog.forget_damaged([version.version_id])  # queued by a read that raced
    return Outcome("healthy", bad=bad or {})


def _name(version: ObjectVersion) -> str:
    return f"{version.key!r} (version {version.version_id.hex()})"


def _refused(ctx: JobContext) -> set[str]:
    """Sites that refused a new file during this job: not asked again by the job."""
    found = ctx.options.setdefault("refused", set())
    assert isinstance(found, set)
    return found


async def _unavailable(ctx: JobContext) -> set[str]:
    """Sites no new piece may go to: down by the health tracker, or retired (evacuations).
    Asked of the catalog each time, not through the placer's cache: an evacuation that ended
    a moment ago must not receive pieces from the next one."""
    if ctx.placer is None:
        return set()
    return set(ctx.placer.health.unavailable()) | set(await retired_sites(ctx.catalog))


async def _moves(
    ctx: JobContext, version: ObjectVersion, moving: set[int], down: set[str], rebalance: bool
) -> dict[int, str]:
    placer = ctx.placer
    if placer is None:
        if moving:
            raise NoRelocation("no placement policy known to this job")
        return {}
    bucket = await ctx.catalog.get_bucket_by_id(version.bucket_id)
    if bucket is None:
        return {}
    policy = await placer.policy(bucket)
    profiles = list(placer.profiles)
    known = {p.name for p in profiles}
    profiles += [unprofiled(name) for name in version.sites if name not in known]
    code = (version.k, version.m)
    if rebalance:
        if (policy.k, policy.m) != code:
            policy = policy.model_copy(update={"k": code[0], "m": code[1]})
        if moving or check(policy, profiles, Placement(version.sites, *code)):
            try:
                target = solve(policy, profiles, unavailable=down, seed=version.version_id)
            except Infeasible as exc:
                raise NoRelocation(str(exc)) from None
            return align(version.sites, target.sites)
        return {}
    return relocate(policy, profiles, version.sites, moving, down, version.version_id, code)


async def _rewrite(
    ctx: JobContext, damage: Damage, targets: dict[int, str], moved: set[int]
) -> tuple[list[Written], str]:
    """Write the target pieces part by part: in each part, those damaged there and those that
    move (every one, for a packed version); the completion record copies likewise, from a
    whole copy. Then read each new file back whole. Also why a damaged completion record
    could not be written again ("" when none)."""
    version = damage.version
    packed = version.pack is not None
    files = shard_files(version)
    written: list[Written] = []
    for seq in sorted({f.part for f in files}):
        damaged = damage.damaged_in(seq)
        wanted = {i: s for i, s in targets.items() if packed or i in moved or i in damaged}
        if wanted:
            shards = [f for f in files if f.part == seq]
            written += await rewrite_part(version, shards, damage.usable(seq), wanted, ctx.sites)
    # The record of a completed multipart upload (engine.manifest) follows its pieces: a
    # rebuild of the catalog needs one.
    records = completion_records(version)
    damaged = damage.damaged_in(COMPLETION_SEQ)
    wanted = {i: s for i, s in targets.items() if i in moved or i in damaged}
    whole = damage.whole_records()
    unhealed = ""
    if records and wanted and not whole:
        if damaged:
            unhealed = "no whole completion record left to copy"
        else:  # completed before records existed: none to copy
            log.info("%s: no completion record to copy", _name(version))
    elif records and wanted:
        try:
            written += await rewrite_part(version, records, whole, wanted, ctx.sites)
        except RewriteError as exc:
            if exc.target is not None:
                raise
            unhealed = f"completion record not copied: {exc}"
    by_place = {(f.index, f.part): f for f in [*files, *records]}
    for w in written:
        copy = replace(by_place[w.index, w.part], site=w.site, file=w.file, offset=0, packed=False)
        problem = await verify_shard(ctx.sites[w.site], copy, version)
        if problem is not None:
            raise RewriteError(f"the new copy on {w.site} does not verify: {problem}")
    return written, unhealed


Act = Callable[[ObjectVersion], Awaitable[Outcome]]


async def scan(
    ctx: JobContext,
    job: Job,
    act: Act,
    *,
    pick: Callable[[ObjectVersion], bool] | None = None,
    period: float = 0.0,
) -> AsyncGenerator[Step, None]:
    """Apply `act` to every stored version (those `pick` accepts), BATCH at a time, from the
    job's cursor on. With `period`, the pass is spread evenly over that many seconds."""
    cursor = job.cursor or {}
    after = bytes.fromhex(str(cursor.get("after", "")))
    ctx.options["refused"] = set()  # sites refusing files are remembered for one pass
    total = await ctx.catalog.count_versions()
    seen = job.progress.get("items", 0)
    started = time.monotonic() - (period * seen / total if period and total else 0.0)
    while batch := await ctx.catalog.versions_after(after or None, BATCH):
        after = batch[-1].version_id
        chosen = [v for v in batch if pick is None or pick(v)]
        outcomes = await _each(chosen, act)
        counts = _tally(outcomes, items=len(batch))
        for version, outcome in zip(chosen, outcomes, strict=True):
            _log(job, version, outcome)
        yield Step({"after": after.hex()}, counts, total=total)
        seen += len(batch)
        if period and total:
            ahead = started + period * seen / total - time.monotonic()
            if ahead > 0:
                await asyncio.sleep(ahead)


async def _each(versions: list[ObjectVersion], act: Act) -> list[Outcome]:
    """`act` on each version at once; an unexpected error is that version's outcome (logged
    with its traceback), never the end of the others or of the job."""
    results = await asyncio.gather(*(act(v) for v in versions), return_exceptions=True)
    outcomes = []
    for version, result in zip(versions, results, strict=True):
        if isinstance(result, Exception):
            log.error("%s: %s", _name(version), result, exc_info=result)
            result = Outcome("stuck", f"error: {type(result).__name__}: {result}")
        elif isinstance(result, BaseException):
            raise result
        outcomes.append(result)
    return outcomes


def _tally(outcomes: list[Outcome], items: int) -> dict[str, int]:
    counts = {"items": items, "bytes": sum(o.bytes for o in outcomes)}
    for outcome in outcomes:
        counts[outcome.state] = counts.get(outcome.state, 0) + 1
        counts["bad_pieces"] = counts.get("bad_pieces", 0) + len(outcome.bad)
    return counts


def _log(job: Job, version: ObjectVersion, outcome: Outcome) -> None:
    """A log line per action: each version repaired, moved, or left damaged, and why."""
    if outcome.state == "healthy":
        return
    level = logging.INFO if outcome.state in ("repaired", "moved") else logging.WARNING
    log.log(level, "job %d (%s): %s %s: %s", job.id, job.kind, _name(version), outcome.state,
            outcome.note or "; ".join(outcome.bad.values()))  # fmt: skip


@job_kind("repair")
async def repair_job(ctx: JobContext, job: Job) -> AsyncGenerator[Step, None]:
    """First the versions queued by reads and scrubs, then (unless `queue_only`) every version,
    and the records kept on every site onto the sites that lack them. Params: deep (check
    every CRC instead of file sizes), queue_only."""
    deep = bool(job.params.get("deep"))
    ctx.options["refused"] = set()
    cursor = job.cursor or {"phase": "queue"}
    if cursor.get("phase") == "queue":
        after = bytes.fromhex(str(cursor.get("after", "")))
        while queued := await ctx.catalog.damaged(after or None, BATCH):
            after = queued[-1][0]
            versions = [await ctx.catalog.get_version_by_id(vid) for vid, _ in queued]
            gone = [vid for (vid, _), v in zip(queued, versions, strict=True) if v is None]
            await ctx.catalog.forget_damaged(gone)
            live = [v for v in versions if v is not None]
            outcomes = await _each(live, lambda v: mend(ctx, v, deep=True))
            for version, outcome in zip(live, outcomes, strict=True):
                _log(job, version, outcome)
            yield Step({"phase": "queue", "after": after.hex()}, _tally(outcomes, 0))
        if job.params.get("queue_only"):
            return
        job = replace(job, cursor=None)
        yield Step({"phase": "scan"})
    if cursor.get("phase") != "records":
        async for step in scan(ctx, job, lambda v: mend(ctx, v, deep=deep)):
            yield replace(step, cursor={"phase": "scan", **(step.cursor or {})})
    yield await _spread(ctx)


async def _spread(ctx: JobContext) -> Step:
    """The records kept on every site (egide.maintenance.spread) copied onto the sites that
    lack them: a site replaced by an empty one holds them again when the repair ends, not
    only after the next garbage collection."""
    spread = await spread_records(ctx.catalog, ctx.sites, skip=await retired_sites(ctx.catalog))
    copied = sum(spread.copied.values())
    notes = [", ".join(f"{n} to {site}" for site, n in sorted(spread.copied.items()))]
    if spread.missing:
        log.warning("records on no site, not copied: %s", ", ".join(spread.missing))
        notes.append(f"{len(spread.missing)} on no site")
    notes += [f"{site} not listed: {why}" for site, why in sorted(spread.unreachable.items())]
    note = "records copied: " + ("; ".join(n for n in notes if n) or "none missing")
    return Step({"phase": "records"}, {"records_copied": copied}, note=note)
