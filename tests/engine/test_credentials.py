"""The credentials service: an access key added is in the catalog, recorded on the sites and
announced, in one call; a start adds the configured keys and a first one if there is none."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import make_env

from egide.engine.credentialrecords import read_credentials
from egide.engine.credentials import CredentialService


def test_an_added_key_opens_and_is_recorded_on_the_sites_at_once(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    sites = {site.name: site for site in env.sites}

    async def scenario() -> None:
        await env.store.credentials.add("EGADDEDACCESSKEY0001", "added secret")
        sealed = await env.catalog.get_credential("EGADDEDACCESSKEY0001")
        assert sealed is not None
        assert env.keyring.open_secret("EGADDEDACCESSKEY0001", sealed) == b"added secret"
        found, _, problems = await read_credentials(sites, env.keyring)
        assert problems == []
        assert found is not None
        assert [(k.access_key, k.user, s) for k, s in found.keys] == [
            ("EGADDEDACCESSKEY0001", "admin", sealed)
        ]
        access, secret = await env.store.credentials.create()
        assert access.startswith("EG") and len(access) == 20 and len(secret) >= 30
        found, _, _ = await read_credentials(sites, env.keyring)
        assert found is not None and sorted(k.access_key for k, _ in found.keys) == sorted(
            ["EGADDEDACCESSKEY0001", access]
        )

    env.run(scenario)


def test_a_start_adds_the_configured_keys_and_a_first_one_only_when_none(tmp_path: Path) -> None:
    env = make_env(tmp_path)

    async def scenario() -> None:
        service = CredentialService(env.catalog, env.keyring)  # before any store: no record
        created = await service.ensure([])
        assert len(created) == 1 and await service.exists(created[0][0])
        assert await service.ensure([]) == []  # one exists: no second
        assert await service.ensure([("EGCONFIGUREDKEY00001", "configured secret")]) == []
        assert await service.exists("EGCONFIGUREDKEY00001")
        assert await service.count() == 2
        keys = await env.catalog.access_keys()
        assert {k.user for k in keys} == {"admin"}  # the first key is the administrator's
        assert [n async for n in env.sites[0].list("creds-")] == []

    env.run(scenario)
