"""egide.toml → typed settings. Every field has a default, so no file at all is a valid setup."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from egide.config_paths import resolve_file_paths, sites_left_behind
from egide.placement import Policy, SiteProfile
from egide.placement.settings import (
    BucketPolicies,
    PolicyConfig,
    SiteProfileFields,
    bucket_policies,
    placement_problems,
)

MiB = 1024 * 1024
DEFAULT_SITE_COUNT = 6


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


SITE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"


class LocalSiteConfig(SiteProfileFields, _Strict):
    """A directory; the profile fields (provider, country …) are egide.placement.settings'."""

    name: str = Field(pattern=SITE_NAME)
    kind: Literal["local"] = "local"
    path: Path


class S3SiteConfig(SiteProfileFields, _Strict):
    """A bucket (and prefix) of any S3-compatible provider; shards go to `{prefix}{shard}`."""

    name: str = Field(pattern=SITE_NAME)
    kind: Literal["s3"]
    endpoint: str
    region: str = Field("us-east-1", min_length=1)
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    #: Slash-separated path segments, e.g. "egide/" (no leading slash, no empty segment).
    prefix: str = Field("", pattern=r"^(?:[A-Za-z0-9_.-]+/)*[A-Za-z0-9_.-]*$")
    #: Absent: EGIDE_SITE_<NAME>_ACCESS_KEY/_SECRET_KEY, then AWS_ACCESS_KEY_ID/_SECRET_ACCESS_KEY.
    access_key: str | None = Field(None, min_length=1, repr=False)
    secret_key: str | None = Field(None, min_length=1, repr=False)
    #: Whole request, connection to last byte; each part of a large shard is one request.
    timeout_seconds: float = Field(30.0, gt=0, le=3600)
    connect_timeout_seconds: float = Field(5.0, gt=0, le=600)
    #: Retries (with exponential backoff) on 5xx, throttling, dropped connections.
    max_retries: int = Field(3, ge=0, le=20)
    #: Create the bucket at start if it does not exist; by default a missing bucket is an error.
    create_bucket: bool = False
    #: `bucket.host` URLs instead of `host/bucket` (path style works with every provider).
    virtual_hosted_style: bool = False

    @field_validator("endpoint")
    @classmethod
    def _check_endpoint(cls, value: str) -> str:
        url = urlsplit(value)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"{value!r} is not an http:// or https:// URL")
        return value.rstrip("/")

    @field_validator("prefix")
    @classmethod
    def _check_prefix(cls, value: str) -> str:
        if any(part in (".", "..") for part in value.split("/")):
            raise ValueError("'.' and '..' are not allowed as prefix segments")
        return value

    @model_validator(mode="after")
    def _check_credentials(self) -> S3SiteConfig:
        self.resolved_credentials()
        return self

    def default_provider(self) -> str:
        """Without `provider`, buckets behind one endpoint count as one provider."""
        return urlsplit(self.endpoint).netloc

    @property
    def allow_http(self) -> bool:
        return self.endpoint.startswith("http://")

    def env_prefix(self) -> str:
        return "EGIDE_SITE_" + re.sub(r"[^A-Za-z0-9]", "_", self.name).upper()

    def resolved_credentials(self) -> tuple[str, str]:
        """The key pair: from the file, else the site's variables, else the AWS ones."""
        env = self.env_prefix()
        sources = [
            ("access_key/secret_key", self.access_key, self.secret_key),
            (f"{env}_ACCESS_KEY/{env}_SECRET_KEY",
             os.environ.get(f"{env}_ACCESS_KEY"), os.environ.get(f"{env}_SECRET_KEY")),
            ("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY",
             os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")),
        ]  # fmt: skip
        for where, access, secret in sources:
            if access and secret:
                return access, secret
            if access or secret:
                raise ValueError(f"site {self.name}: {where}: set both, or neither")
        raise ValueError(
            f"site {self.name}: no credentials; set access_key and secret_key, or the "
            f"environment variables {env}_ACCESS_KEY and {env}_SECRET_KEY"
        )


def _site_kind(value: object) -> str:
    """`kind` may be left out of a local site, as before S3 sites existed."""
    kind = value.get("kind", "local") if isinstance(value, dict) else getattr(value, "kind", None)
    return str(kind)


SiteConfig = Annotated[
    Annotated[LocalSiteConfig, Tag("local")] | Annotated[S3SiteConfig, Tag("s3")],
    Discriminator(
        _site_kind,
        custom_error_type="site_kind",
        custom_error_message="kind must be 'local' or 's3'",
    ),
]


def _site_error_loc(loc: tuple[int | str, ...]) -> tuple[int | str, ...]:
    """A site error names the field as written (sites.0.bucket), not pydantic's union tag
    (sites.0.s3.bucket); a bad kind is reported on `kind`."""
    if loc[:1] != ("sites",) or len(loc) < 2:
        return loc
    if len(loc) == 2:
        return (*loc, "kind")
    return loc[:2] + loc[3:] if loc[2] in ("local", "s3") else loc


class CodeConfig(_Strict):
    k: int = Field(ge=1, le=32)
    m: int = Field(ge=0, le=16)


class CredentialConfig(_Strict):
    access_key: str = Field(min_length=3, max_length=128, pattern=r"^[A-Za-z0-9]+$")
    secret_key: str = Field(min_length=8, max_length=128)


def default_code(site_count: int) -> CodeConfig:
    """4+2 from six sites; with fewer, the largest code that still survives losing a site."""
    m = 2 if site_count >= 5 else 1 if site_count >= 2 else 0
    return CodeConfig(k=min(4, site_count - m), m=m)


class MaintenanceConfig(_Strict):
    """Background jobs (`[maintenance]`): repair, scrub, garbage collection, their pace."""

    #: Default rate limit of a job, in bytes of shard data per second (0: none); a job's own
    #: `--rate` overrides it. Live traffic keeps its latency when jobs leave it room.
    rate_bytes_per_second: int = Field(default=0, ge=0)
    #: A scrub reads the whole store once per this many days, at an even pace (0: never).
    scrub_period_days: float = Field(default=30.0, ge=0.0)
    #: Garbage collection runs this often (0: never); a file unreferenced for the grace
    #: period is deleted.
    gc_interval_hours: float = Field(default=24.0, ge=0.0)
    gc_grace_hours: float = Field(default=24.0, ge=0.0)
    #: How often the servers look for versions that reads found damaged, and repair them.
    repair_queue_seconds: float = Field(default=60.0, gt=0.0)
    #: A job's runner renews its hold this often × 3; a runner silent that long is presumed
    #: dead and its job taken over.
    lease_seconds: float = Field(default=60.0, gt=0.0)
    #: Run jobs in the server processes (else only `egide` commands run them).
    run_in_server: bool = True


class CatalogConfig(_Strict):
    """Where the catalog is (`[catalog]`): SQLite in the data directory by default, or a
    PostgreSQL database that several gateways share (docs/scale-out.md). The password is never
    in the file: it is read from the environment variable `password_env` or the owner-only
    file `password_file` (or neither: trust, a client certificate, ~/.pgpass)."""

    #: postgresql://user@host:port/database (with ?sslmode=… and other libpq parameters).
    url: str | None = None
    password_env: str | None = Field(default=None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    password_file: Path | None = None
    #: Connections each server process keeps to the database, at most.
    pool_size: int = Field(default=10, ge=1, le=200)

    @model_validator(mode="after")
    def _check(self) -> CatalogConfig:
        if self.url is None:
            if self.password_env or self.password_file:
                raise ValueError("catalog: password_env and password_file need a url")
            return self
        parts = urlsplit(self.url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(
                "catalog: url must be postgresql://user@host:port/database "
                "(leave it out for the SQLite catalog in the data directory)"
            )
        if parts.password is not None:
            raise ValueError(
                "catalog: the url must not hold the password; name an environment variable "
                "(password_env) or a file (password_file) holding it"
            )
        if self.password_env and self.password_file:
            raise ValueError("catalog: set password_env or password_file, not both")
        return self


class HealthConfig(_Strict):
    """How reads judge sites (`[health]`): latency window, hedging, circuit breaker."""

    #: Ask one more shard when a read is slower than its site usually is (a hedged request).
    hedge: bool = True
    #: A read is hedged after hedge_factor × this quantile of its site's recent latencies,
    #: kept between hedge_min_ms and hedge_max_ms; hedge_initial_ms for a site not measured yet.
    hedge_quantile: float = Field(default=0.9, ge=0.5, le=0.999)
    hedge_factor: float = Field(default=2.0, ge=1.0, le=20.0)
    hedge_min_ms: float = Field(default=10.0, ge=0.0, le=60_000.0)
    hedge_max_ms: float = Field(default=1000.0, ge=0.0, le=600_000.0)
    hedge_initial_ms: float = Field(default=100.0, ge=0.0, le=600_000.0)
    #: Latencies kept per site: the last this many reads, none older than the age below (a
    #: site left alone that long is measured again).
    latency_window: int = Field(default=64, ge=1, le=4096)
    latency_max_age_seconds: float = Field(default=60.0, gt=0.0)
    #: Consecutive failures that open a site's breaker (it is then asked only if no other shard
    #: is left), and the cool-down before a probe read, doubled after each failed probe.
    failures_to_open: int = Field(default=3, ge=1, le=1000)
    cooldown_seconds: float = Field(default=1.0, gt=0.0, le=3600.0)
    cooldown_max_seconds: float = Field(default=60.0, gt=0.0, le=86_400.0)

    @model_validator(mode="after")
    def _check(self) -> HealthConfig:
        if self.hedge_min_ms > self.hedge_max_ms:
            raise ValueError("hedge_min_ms is above hedge_max_ms")
        if self.cooldown_seconds > self.cooldown_max_seconds:
            raise ValueError("cooldown_seconds is above cooldown_max_seconds")
        return self


class HttpConfig(_Strict):
    """Bounds on what one client may hold of a server process (`[http]`, docs/guide.md
    "Connections and limits"), and the optional access log."""

    #: The request head (request line and headers) and each header line, in bytes: above,
    #: 400 RequestHeaderSectionTooLarge and the connection is closed (S3 allows 8 KiB).
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, le=MiB)
    max_header_line_bytes: int = Field(default=8 * 1024, ge=256, le=MiB)
    max_headers: int = Field(default=100, ge=8, le=10_000)
    #: Seconds a client has to send a whole request head (from the connection or from its
    #: first byte), and may leave a body without sending a byte (then 400 RequestTimeout).
    header_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    body_timeout_seconds: float = Field(default=20.0, gt=0, le=3600)
    #: Seconds an idle keep-alive connection stays open.
    keep_alive_seconds: int = Field(default=15, ge=1, le=3600)
    #: Connections per server process. A new one beyond closes the connection idle longest
    #: (503 SlowDown if every one is busy); kept below the process's file limit.
    max_connections: int = Field(default=1000, ge=1, le=1_000_000)
    #: JSON lines, one per request: "-" for standard error, or a file path (relative: from the
    #: configuration file's folder); none by default. Signatures and security tokens are never
    #: written (docs/guide.md).
    access_log: str | None = None

    @field_validator("access_log")
    @classmethod
    def _check_access_log(cls, value: str | None) -> str | None:
        if value is not None and value != "-" and not Path(value).is_absolute():
            raise ValueError('a file path, or "-" for standard error')
        return value


class MetricsConfig(_Strict):
    """The Prometheus endpoint `/_egide/metrics` (`[metrics]`, docs/operations.md). It needs no
    signature (Prometheus does not sign): who may scrape is bounded by address and, if a token
    file is named, by `Authorization: Bearer <token>`. Loopback only by default."""

    enabled: bool = True
    #: Client addresses or networks allowed to scrape (CIDR); ["0.0.0.0/0", "::/0"]: any.
    allowed_addresses: list[str] = Field(default_factory=lambda: ["127.0.0.1/32", "::1/128"])
    #: A file holding the bearer token a scrape must present (Prometheus's
    #: `authorization.credentials_file`); none by default.
    bearer_token_file: Path | None = None
    #: Seconds the sites' write probe and the catalog check of /_egide/health/ready are reused.
    ready_cache_seconds: float = Field(default=5.0, ge=0, le=600)

    @field_validator("allowed_addresses")
    @classmethod
    def _check_networks(cls, value: list[str]) -> list[str]:
        for network in value:
            ipaddress.ip_network(network, strict=False)  # ValueError names the bad one
        return value


class OidcRoleRule(_Strict):
    """A claim of an ID token that entitles its holder to a role: `claim` holds `value` (a
    string claim equal to it, or a list claim containing it)."""

    claim: str = Field(min_length=1)
    value: str
    role: str = Field(min_length=1, max_length=64)


class OidcProviderConfig(_Strict):
    """An OpenID Connect provider whose ID tokens AssumeRoleWithWebIdentity accepts
    (docs/sts.md): ProConnect, Keycloak … Its keys come from its discovery document."""

    #: The `iss` of its tokens, e.g. https://auth.example.org/realms/town. HTTPS, except on
    #: localhost (tests).
    issuer: str
    #: Client ids accepted as the token's `aud`.
    audiences: list[str] = Field(min_length=1)
    #: Which claims entitle to which role (the role's trust policy may also name the provider).
    roles: list[OidcRoleRule] = Field(default_factory=list)
    timeout_seconds: float = Field(5.0, gt=0, le=60)

    @field_validator("issuer")
    @classmethod
    def _check_issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        local = parts.scheme == "http" and parts.hostname in ("localhost", "127.0.0.1", "::1")
        if not (parts.scheme == "https" or local) or not parts.netloc:
            raise ValueError("an https:// URL (http:// only on localhost, for tests)")
        return value.rstrip("/")


class StsConfig(_Strict):
    #: Shortest session, in seconds: 900 as AWS's. Lower only in tests, to see sessions expire.
    min_duration_seconds: int = Field(default=900, ge=1, le=900)


class SqlConfig(_Strict):
    """Limits of each query `POST /_egide/sql` and S3 Select run (docs/analytics.md)."""

    #: DuckDB's memory limit per query (nothing spills to disk: past it the query fails).
    memory_limit: str = Field(default="1GB", pattern=r"^\d+(\.\d+)?\s*[KMGT]i?B$")
    #: DuckDB threads per query.
    threads: int = Field(default=2, ge=1, le=64)
    #: Seconds a query may run before it is interrupted.
    timeout_seconds: float = Field(default=300.0, gt=0, le=86_400)


class Settings(_Strict):
    data_dir: Path = Path("egide-data")
    listen: str = Field("127.0.0.1:9000", pattern=r"^[^:\s]+:\d{1,5}$")
    block_size: int = Field(MiB, ge=64 * 1024, le=16 * MiB)
    #: The erasure code; by default derived from the number of sites (4+2 for six).
    code: CodeConfig | None = None
    #: Sites; by default six local directories under data_dir/sites.
    sites: list[SiteConfig] = Field(default_factory=list)
    credentials: list[CredentialConfig] = Field(default_factory=list)
    #: Objects up to this size are written in packs shared with other small objects (one file
    #: per site for many objects); 0 writes every object in files of its own.
    pack_threshold: int = Field(256 * 1024, ge=0, le=16 * MiB)
    #: Server processes sharing the listening socket; by default one per core.
    workers: int | None = Field(None, ge=1, le=64)
    #: PEM certificate chain and key: serve HTTPS instead of HTTP.
    tls_cert: Path | None = None
    tls_key: Path | None = None
    #: Seconds a server process trusts what it read of a bucket (that it exists, its placement
    #: policy, its CORS rules): a change made through another process shows within this delay.
    bucket_cache_seconds: float = Field(1.0, ge=0, le=60)
    #: Seconds a replaced version's shards are kept, so that reads already under way finish.
    trash_grace_seconds: float = Field(60.0, ge=0)
    #: Days after which a multipart upload never completed nor aborted is aborted and its
    #: parts deleted (lifecycle rules may abort sooner); 0 keeps them until aborted.
    incomplete_upload_days: float = Field(7.0, ge=0)
    #: Seconds between two passes applying the buckets' lifecycle rules.
    lifecycle_interval_seconds: float = Field(3600.0, gt=0)
    #: The length of a lifecycle day in seconds. For testing only: shorten it to see rules act
    #: in seconds; anything but 86400 expires objects early.
    lifecycle_day_seconds: float = Field(86_400.0, gt=0)
    #: Seconds between two encrypted catalog snapshots written to the sites (0: none); the
    #: newest `snapshot_keep` are kept (docs/catalog-recovery.md).
    snapshot_interval_seconds: float = Field(3600.0, ge=0)
    snapshot_keep: int = Field(3, ge=1, le=1000)
    #: Domains for virtual-hosted-style requests: Host `<bucket>.<domain>` names the bucket.
    domains: list[str] = Field(default_factory=list)
    #: The Object Ownership of a bucket created without x-amz-object-ownership: AWS's default
    #: BucketOwnerEnforced (ACLs disabled), or BucketOwnerPreferred, ObjectWriter
    #: (docs/policies.md).
    default_object_ownership: Literal[
        "BucketOwnerEnforced", "BucketOwnerPreferred", "ObjectWriter"
    ] = "BucketOwnerEnforced"
    #: The catalog's database (`[catalog]`): SQLite in data_dir unless a PostgreSQL url is set.
    catalog: CatalogConfig = CatalogConfig()
    #: Site latency, hedged reads and circuit breakers (docs/guide.md, "Slow and failing sites").
    health: HealthConfig = HealthConfig()
    maintenance: MaintenanceConfig = MaintenanceConfig()
    #: Header bounds, client timeouts, connection cap, access log (`[http]`).
    http: HttpConfig = HttpConfig()
    #: The Prometheus endpoint and who may scrape it (`[metrics]`, docs/operations.md).
    metrics: MetricsConfig = MetricsConfig()
    #: Placement policies (`[[policies]]`): one without `buckets` is the default; without any,
    #: every bucket uses `code` over all sites (docs/placement.md).
    policies: list[PolicyConfig] = Field(default_factory=list)
    #: The organisation's own jurisdictions: every other law a site is under (`unknown`
    #: included) is foreign to `egide policy check`'s exposure proof (docs/placement.md).
    home_laws: list[str] = Field(default_factory=lambda: ["eu"], min_length=1)
    #: A file holding the passphrase of a protected master key (docs/keys.md), for servers
    #: started without a terminal; EGIDE_PASSPHRASE does the same.
    passphrase_file: Path | None = None
    #: Temporary credentials (`[sts]`) and the OpenID Connect providers whose sign-ins get
    #: them (`[[oidc]]`; docs/sts.md).
    sts: StsConfig = StsConfig()
    #: Limits of SQL over HTTP and S3 Select (`[sql]`).
    sql: SqlConfig = SqlConfig()
    oidc: list[OidcProviderConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not 0 < self.port < 65536:
            raise ValueError(f"listen: port {self.port} is not between 1 and 65535")
        names = [site.name for site in self.sites]
        if len(set(names)) != len(names):
            raise ValueError("sites: two sites have the same name")
        site_count = len(self.sites) or DEFAULT_SITE_COUNT
        if self.code is not None and self.code.k + self.code.m > site_count:
            raise ValueError(
                f"code: {self.code.k}+{self.code.m} needs {self.code.k + self.code.m} sites, "
                f"only {site_count} are configured"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: set both to serve HTTPS, or neither")
        problems = placement_problems(self.policies, self.resolved_sites())
        if problems:  # each names its policy: no pydantic "Value error, " prefix
            raise PydanticCustomError("placement", "{message}", {"message": "; ".join(problems)})
        return self

    @property
    def scheme(self) -> str:
        return "https" if self.tls_cert else "http"

    @property
    def host(self) -> str:
        return self.listen.rsplit(":", 1)[0]

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def resolved_sites(self) -> list[SiteConfig]:
        if self.sites:  # their paths as given (the file's, from its folder: load_settings)
            return list(self.sites)
        return [
            LocalSiteConfig(name=f"local-{i}", path=self.data_dir / "sites" / f"local-{i}")
            for i in range(1, DEFAULT_SITE_COUNT + 1)
        ]

    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def resolved_code(self) -> CodeConfig:
        return self.code or default_code(len(self.resolved_sites()))

    def site_profiles(self) -> list[SiteProfile]:
        """The inventory placement solves over: every site's profile, defaults filled in."""
        return [site.profile() for site in self.resolved_sites()]

    def bucket_policies(self) -> BucketPolicies:
        """The configured policies; the catalog's per-bucket setting overrides them."""
        return bucket_policies(self.policies)

    def fallback_policy(self) -> Policy:
        """What a bucket without any policy gets: the global code over every site."""
        code = self.resolved_code()
        return Policy(k=code.k, m=code.m)


def load_settings(path: Path | None, **overrides: object) -> Settings:
    """Read and validate a TOML file (or none); `overrides` come from the command line."""
    data: dict[str, object] = {}
    written_sites: dict[str, str] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        written_sites = resolve_file_paths(data, path.parent)
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        settings = Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, _site_error_loc(err['loc']))) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path or 'settings'}: {problems}") from None
    if path is not None and (left_behind := sites_left_behind(settings, written_sites, path)):
        raise ConfigError(f"{path}: {left_behind}")
    return settings
