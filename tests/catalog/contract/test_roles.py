"""Catalog contract: roles (STS) and the identity policies attached to them."""

from __future__ import annotations

import pytest

from egide.catalog.base import Catalog
from egide.domain import IdentityExists, IdentityNotFound, Role

TRUST = '{"Statement": {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}}'


async def test_roles_are_created_read_listed_and_unique(catalog: Catalog) -> None:
    await catalog.create_role(Role("writer", "AROAW", 2.0, TRUST, 7200))
    await catalog.create_role(Role("auditor", "AROAA", 3.0, TRUST))
    with pytest.raises(IdentityExists):
        await catalog.create_role(Role("writer", "AROAX", 4.0, TRUST))
    assert [r.name for r in await catalog.roles()] == ["auditor", "writer"]
    assert await catalog.role("writer") == Role("writer", "AROAW", 2.0, TRUST, 7200)
    assert (await catalog.role("auditor")).max_session == 3600  # type: ignore[union-attr]
    assert await catalog.role("nobody") is None


async def test_a_role_is_updated_in_what_is_given(catalog: Catalog) -> None:
    await catalog.create_role(Role("writer", "AROAW", 2.0, TRUST, 7200))
    await catalog.update_role("writer", max_session=900)
    assert await catalog.role("writer") == Role("writer", "AROAW", 2.0, TRUST, 900)
    await catalog.update_role("writer", trust_policy="{}")
    assert await catalog.role("writer") == Role("writer", "AROAW", 2.0, "{}", 900)
    with pytest.raises(IdentityNotFound):
        await catalog.update_role("nobody", max_session=900)


async def test_policies_attach_to_roles_and_go_with_them(catalog: Catalog) -> None:
    with pytest.raises(IdentityNotFound):
        await catalog.put_identity_policy("role", "writer", "rw", "{}")
    await catalog.create_role(Role("writer", "AROAW", 2.0, TRUST))
    await catalog.put_identity_policy("role", "writer", "rw", '{"a": 1}')
    assert await catalog.identity_policies("role", "writer") == {"rw": '{"a": 1}'}
    await catalog.delete_role("writer")
    assert await catalog.role("writer") is None
    with pytest.raises(IdentityNotFound):
        await catalog.delete_role("writer")
    await catalog.create_role(Role("writer", "AROAW2", 5.0, TRUST))
    assert await catalog.identity_policies("role", "writer") == {}  # not the old role's
