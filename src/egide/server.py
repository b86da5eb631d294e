"""Assemble Égide from settings: key, catalog, sites, store, the front door and the apps it
mounts; first-start defaults."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import multiprocessing
import os
import signal
import socket
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from functools import partial
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

import uvicorn

from egide import __version__, telemetry
from egide.admin.health import PREFIX as HEALTH_PREFIX
from egide.admin.health import HealthApp, ReadinessCheck
from egide.admin.http import AdminApp
from egide.admin.metrics import PATH as METRICS_PATH
from egide.admin.metrics import MetricsApp
from egide.auth.authorize import Authorizer
from egide.auth.credentials import SecretCache
from egide.auth.decide import PolicyDecision
from egide.auth.rights import RightsWatch
from egide.auth.sts.app import StsApp
from egide.auth.sts.oidc import OidcVerifier
from egide.catalog import Catalog, catalog_exists, describe_catalog, open_catalog
from egide.config import ConfigError, Settings
from egide.crypto.keyring import Keyring, create_master_key_file
from egide.engine.credentials import CredentialService
from egide.engine.housekeeping import run_housekeeping
from egide.engine.store import ObjectStore
from egide.engine.workers import tune_allocator
from egide.masterkey import load_keyring, unlock_for_workers
from egide.owner_only import check_private_key, owner_only_dir
from egide.s3 import bucketencryption, cors, select
from egide.s3.access import Access
from egide.s3.app import S3App
from egide.s3.bucketpolicy import BucketPolicies
from egide.sites.factory import build_site, describe_site
from egide.sites.health import SiteHealth
from egide.sqlapi.app import SqlApp
from egide.supervisor import Supervisor, check_port_free, reuseport_socket
from egide.telemetry import Metrics
from egide.web.access_log import open_access_log
from egide.web.connection import protocol_class
from egide.web.dispatch import FrontDoor, Mount

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PR_SET_PDEATHSIG = 1


@dataclass
class Started:
    """What a start created or found, for the banner."""

    settings: Settings
    new_credentials: list[tuple[str, str]] = field(default_factory=list)
    created_key: bool = False


def master_key_path(settings: Settings) -> Path:
    return settings.data_dir / "master.key"


def open_keyring(settings: Settings) -> tuple[Keyring, bool]:
    key_path = master_key_path(settings)
    if key_path.exists():
        return load_keyring(settings), False
    if catalog_exists(settings):
        raise ConfigError(
            f"the master key {key_path} is missing but the catalog exists: without the key "
            "nothing stored can be read. Restore the key file from your backup."
        )
    return Keyring(create_master_key_file(key_path)), True


async def _ensure_credentials(
    settings: Settings, catalog: Catalog, keyring: Keyring
) -> list[tuple[str, str]]:
    """The configuration's credentials, and a first pair if there is none (recorded on the
    sites by the servers' first housekeeping round)."""
    configured = [(cred.access_key, cred.secret_key) for cred in settings.credentials]
    return await CredentialService(catalog, keyring).ensure(configured)


def prepare(settings: Settings) -> Started:
    """Everything done once per start, before any worker serves: the data directory, the
    master key, catalog migrations, credentials, and sweeping what a crash left behind."""
    owner_only_dir(settings.data_dir)
    keyring, created_key = open_keyring(settings)
    for site_config in settings.resolved_sites():
        build_site(site_config).prepare()

    async def run() -> list[tuple[str, str]]:
        catalog = open_catalog(settings)
        try:
            return await _ensure_credentials(settings, catalog, keyring)
        finally:
            await catalog.close()

    return Started(settings, asyncio.run(run()), created_key)


def open_store(settings: Settings, metrics: Metrics | None = None) -> ObjectStore:
    """The object service over a prepared data directory: the server's (counting site reads
    in `metrics`), and the one commands such as `egide export` use in their own process."""
    keyring = load_keyring(settings)
    catalog = open_catalog(settings)
    sites = []
    for site_config in settings.resolved_sites():
        site = build_site(site_config)
        site.attach()
        sites.append(site)
    code = settings.resolved_code()
    store = ObjectStore(
        catalog, keyring, sites, k=code.k, m=code.m, block_size=settings.block_size,
        trash_grace=settings.trash_grace_seconds, pack_threshold=settings.pack_threshold,
        upload_expiry=settings.incomplete_upload_days * 86400,
        lifecycle_interval=settings.lifecycle_interval_seconds,
        lifecycle_day=settings.lifecycle_day_seconds,
        bucket_cache_seconds=settings.bucket_cache_seconds,
        health=SiteHealth([site.name for site in sites], settings.health, metrics=metrics),
        profiles=settings.site_profiles(), policies=settings.bucket_policies(),
    )  # fmt: skip
    return store


def open_rights(store: ObjectStore, settings: Settings) -> tuple[Access, PolicyDecision]:
    """What decides a request's rights over `store` (identity and bucket policies, owners and
    ACLs): the server's, and the one `egide sql` checks every object of a query with."""
    policies = BucketPolicies(store, clock=store.clock)
    access = Access(
        store, policies=policies, clock=store.clock,
        default_ownership=settings.default_object_ownership,
    )  # fmt: skip
    decide = PolicyDecision(
        store.catalog, bucket_policy=policies, grants=access.grants,
        restricted=access.restricted, object_tags=access.object_tags, clock=store.clock,
    )  # fmt: skip
    # A change of rights made through this process applies here at once; one made elsewhere,
    # from the next request on in a server (its RightsWatch), within a second otherwise.
    for cache in (decide, policies):
        store.events.subscribe(cache.forget)
    return access, decide


def open_app(settings: Settings, authorizer: Authorizer | None = None) -> FrontDoor:
    """The front door of one server process, over a prepared data directory: the S3 API for
    every path, the admin API under /_egide/admin/, one secret cache and one `authorizer`
    shared by both (by policies unless given: egide.auth.decide)."""
    tune_allocator()
    counted = telemetry.metrics() if settings.metrics.enabled else None
    store = open_store(settings, counted)
    background: list[Callable[[], Coroutine[Any, Any, None]]] = [partial(run_housekeeping, store)]
    if settings.maintenance.run_in_server:
        from egide.maintenance.schedule import run_maintenance, store_context

        config = settings.maintenance
        background.append(lambda: run_maintenance(store_context(store, config), config))
    if settings.snapshot_interval_seconds:
        from egide.recovery.snapshots import run_snapshot_schedule

        background.append(
            lambda: run_snapshot_schedule(
                store.catalog,
                store.keyring,
                store.sites,
                data_dir=settings.data_dir,
                interval=settings.snapshot_interval_seconds,
                keep=settings.snapshot_keep,
                profiles=settings.site_profiles(),
                retired=store.placer.retired,
            )
        )
    if counted is not None:
        background.append(partial(telemetry.publish, counted))
    secrets = SecretCache(store.catalog, store.keyring, clock=store.clock)
    access, decide = open_rights(store, settings)
    store.events.subscribe(secrets.forget)
    # A change of rights made by any other worker or process applies here from this worker's
    # next request on (the catalog's rights counter, which every bucket and account setting
    # moves too).
    rights = RightsWatch(
        store.catalog, (
            secrets.forget_all, decide.forget_all, access.forget_all, store.buckets.forget_all,
            store.placer.forget_all, store.quotas.forget_all,
            partial(cors.forget_all, store), partial(bucketencryption.forget_all, store),
        ),
    )  # fmt: skip
    authorizer = authorizer or Authorizer(decide)
    sts = StsApp(
        store.catalog, store.keyring, secrets, authorizer, clock=store.clock,
        oidc=OidcVerifier(settings.oidc, clock=store.clock) if settings.oidc else None,
        min_duration=settings.sts.min_duration_seconds,
    )  # fmt: skip
    s3 = S3App(
        store, secrets, authorizer, domains=tuple(settings.domains), spool_dir=settings.data_dir,
        sts=sts,
        access=access, identity_allows=decide.identity_allows,
    )  # fmt: skip
    # Égide's own APIs, under /_egide/ (no bucket name can start with "_"). The console
    # (/_egide/console/), SQL (/_egide/sql), metrics (/_egide/metrics) and the Iceberg REST
    # catalog mount here as they come; the rest of /_egide/ answers a JSON 404.
    select.configure(settings.sql)  # S3 Select's limits
    readiness = ReadinessCheck(store, settings.metrics.ready_cache_seconds)
    mounts = [
        Mount("/_egide/admin/", AdminApp(store, secrets, authorizer)),
        Mount(HEALTH_PREFIX, HealthApp(readiness)),
        Mount("/_egide/sql", SqlApp(store, secrets, authorizer, settings.sql)),
    ]
    if settings.metrics.enabled:
        mounts.append(Mount(METRICS_PATH, MetricsApp(store, readiness, settings.metrics)))
    try:  # the Iceberg REST catalog needs pyiceberg, of the [analytics] extra
        from egide.iceberg.http import IcebergApp
    except ImportError:
        logging.getLogger("egide.iceberg").info("no Iceberg REST catalog: no pyiceberg")
    else:
        mounts.append(Mount("/_iceberg/", IcebergApp(store, secrets, authorizer)))
    return FrontDoor(
        s3, mounts, domains=settings.domains, background=background,
        closers=[store.catalog.close], access_log=open_access_log(settings.http.access_log),
        before_each=rights.check, metrics=counted,
    )  # fmt: skip


def die_with_parent() -> None:
    """A worker must not outlive a supervisor killed with SIGKILL (Linux only). The signal is
    armed only now, after the worker's start-up: a supervisor killed before that is seen gone
    (the worker was handed to another parent), and the worker leaves at once instead of
    serving on, orphaned, on the port."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = multiprocessing.parent_process()
    if parent is not None and os.getppid() != parent.pid:
        os._exit(1)


def _run_server(settings: Settings, sock: socket.socket) -> None:
    """Serve on `sock` until SIGTERM/SIGINT, finishing the requests in flight."""
    config = uvicorn.Config(
        open_app(settings), lifespan="on", loop="uvloop", http=protocol_class(settings.http),
        timeout_keep_alive=settings.http.keep_alive_seconds,
        log_level="warning", timeout_graceful_shutdown=30, server_header=False,
        ssl_certfile=settings.tls_cert, ssl_keyfile=settings.tls_key,
    )  # fmt: skip
    server = uvicorn.Server(config)

    def stop(*_: object) -> None:
        server.should_exit = True

    # A signal before uvicorn installs its handlers still stops the server; and uvicorn, after
    # its graceful shutdown, re-raises the signal to this handler, so a clean stop exits 0.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    server.run(sockets=[sock])


def worker_main(payload: str, ready: Event) -> None:
    """One server process of several, with its own socket on the shared port."""
    die_with_parent()
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    settings = Settings.model_validate_json(payload)
    sock = reuseport_socket(settings.host, settings.port)
    ready.set()
    _run_server(settings, sock)


def banner(started: Started) -> str:
    s = started.settings
    code = s.resolved_code()
    sites = s.resolved_sites()
    lines = [
        f"Égide {__version__}: S3 endpoint {s.scheme}://{s.listen}",
        f"  data directory  {s.data_dir.resolve()}",
        f"  master key      {master_key_path(s).resolve()}"
        + (
            "  (new: keep a copy offline; without it nothing can be read)"
            if started.created_key
            else ""
        ),
        f"  catalog         {describe_catalog(s)}",
        f"  sites           {len(sites)}: " + ", ".join(describe_site(site) for site in sites),
        f"  erasure code    {code.k}+{code.m}: any {code.m} of the {code.k + code.m} shards of "
        "each block can be lost",
    ]
    if len(sites) < 6 and s.code is None:
        lines.append(f"                  ({len(sites)} sites configured; 4+2 needs six)")
    for entry in s.policies:
        lines.append(f"  policy          {entry.label()}: {entry.k}+{entry.m}, {entry.objective}")
    if not s.sites:
        lines.append(
            "  NOTE            these six site directories are on one disk: they guard against "
            "bit-rot and lost files, not against losing the disk. Configure sites on other "
            "disks or providers for that."
        )
    for access, secret in started.new_credentials:
        lines += [
            "New credentials (shown once; the secret is stored encrypted under the master key):",
            f"  access key      {access}",
            f"  secret key      {secret}",
        ]
    return "\n".join(lines)


def serve(settings: Settings) -> None:
    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    # Before anything binds with SO_REUSEPORT, which would let a second server on the same
    # port silently share its traffic.
    check_port_free(settings.host, settings.port)
    if settings.tls_key is not None:
        check_private_key(settings.tls_key, "TLS key")
    unlock_for_workers(settings)
    started = prepare(settings)
    if settings.metrics.enabled:
        # Before any worker starts: they inherit where to keep their counts (egide.telemetry).
        telemetry.start(settings.data_dir / "metrics")
    workers = settings.resolved_workers()
    if workers == 1:
        sock = reuseport_socket(settings.host, settings.port)
        print(banner(started), flush=True)
        _run_server(settings, sock)
    else:
        supervisor = Supervisor(worker_main, settings.model_dump_json(), workers)
        supervisor.run(on_ready=lambda: print(banner(started), flush=True))
    print("Égide stopped cleanly.", flush=True)
