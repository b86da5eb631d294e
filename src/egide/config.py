"""egide.toml → typed settings. Every field has a default, so no file at all is a valid setup."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

MiB = 1024 * 1024
DEFAULT_SITE_COUNT = 6


class ConfigError(Exception):
    """The configuration file is unreadable or invalid; the message names the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SiteConfig(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
    kind: Literal["local"] = "local"
    path: Path


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
    #: Seconds a replaced version's shards are kept, so that reads already under way finish.
    trash_grace_seconds: float = Field(60.0, ge=0)

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
        if self.sites:
            return [
                site.model_copy(update={"path": self.data_dir / site.path}) for site in self.sites
            ]
        return [
            SiteConfig(name=f"local-{i}", path=self.data_dir / "sites" / f"local-{i}")
            for i in range(1, DEFAULT_SITE_COUNT + 1)
        ]

    def resolved_workers(self) -> int:
        return self.workers or os.cpu_count() or 1

    def resolved_code(self) -> CodeConfig:
        return self.code or default_code(len(self.resolved_sites()))


def load_settings(path: Path | None, **overrides: object) -> Settings:
    """Read and validate a TOML file (or none); `overrides` come from the command line."""
    data: dict[str, object] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except OSError as exc:
            raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
        for name in ("data_dir", "tls_cert", "tls_key"):
            if isinstance(data.get(name), str):
                data[name] = path.parent / str(data[name])
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"{path or 'settings'}: {problems}") from None
