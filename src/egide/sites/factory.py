"""Build the site a configuration entry describes, one driver per `kind`."""

from __future__ import annotations

from typing import Protocol

from egide.config import LocalSiteConfig, S3SiteConfig, SiteConfig
from egide.sites.base import Site
from egide.sites.local import LocalSite


class ConfiguredSite(Site, Protocol):
    def prepare(self) -> None:
        """Once per start, before any server process serves."""

    def attach(self) -> None:
        """In each server process, without changing what the site holds."""


def build_site(config: SiteConfig) -> ConfiguredSite:
    if isinstance(config, LocalSiteConfig):
        return LocalSite(config.name, config.path)
    # Imported here: the S3 driver loads obstore's native module, which local-only setups skip.
    from egide.sites.s3 import S3Site

    return S3Site(config)


def describe_site(config: SiteConfig) -> str:
    """For the start-up banner: where the shards go; never the credentials."""
    if isinstance(config, S3SiteConfig):
        return f"{config.name} (s3 {config.endpoint}/{config.bucket}/{config.prefix})"
    return config.name
