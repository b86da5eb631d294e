"""The credentials record: access keys and sealed secrets, sealed as a whole under the master
key, recorded again when they change."""

from __future__ import annotations

from pathlib import Path

from tests.engine.helpers import make_env

from egide.crypto.keyring import Keyring
from egide.engine.credentialrecords import read_credentials, record_credentials


def test_credentials_are_recorded_when_they_change(tmp_path: Path) -> None:
    env = make_env(tmp_path)
    sites = {site.name: site for site in env.sites}

    async def scenario() -> None:
        sealed = env.keyring.seal_secret("EGFIRSTACCESSKEY0001", b"first secret")
        await env.catalog.add_credential("EGFIRSTACCESSKEY0001", sealed)
        assert await record_credentials(env.store.vault)
        assert not await record_credentials(env.store.vault)  # unchanged
        await env.catalog.add_credential("EGSECONDACCESSKEY002", b"sealed second")
        assert await record_credentials(env.store.vault)
        names = [n async for n in env.sites[0].list("creds-")]
        assert len(names) == 2
        for site in env.sites:  # nothing readable: not even the access keys
            for name in names:
                assert b"EGFIRST" not in await site.read(name, 0, -1)
        found, _, problems = await read_credentials(sites, env.keyring)
        assert problems == []
        assert found == await env.catalog.sealed_credentials()
        assert found is not None and len(found) == 2
        other = Keyring(bytes(32))
        missing, _, problems = await read_credentials(sites, other)
        assert missing is None and len(problems) == 2  # under another master key: nothing

    env.run(scenario)
