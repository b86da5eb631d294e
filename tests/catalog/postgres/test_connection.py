"""Reaching the PostgreSQL catalog (src/egide/catalog/postgres/connection.py): an unreachable
database or a wrong password is a clear error naming the database without the password."""

from __future__ import annotations

import pytest
from tests.conftest import free_port
from tests.postgres import PASSWORD

from egide.catalog.postgres import CatalogUnreachable, PostgresCatalog, redacted


def test_an_unreachable_database_is_named_without_its_password() -> None:
    url = f"postgresql://egide@127.0.0.1:{free_port()}/catalog"
    with pytest.raises(CatalogUnreachable) as refused:
        PostgresCatalog(url, password=PASSWORD).open()
    message = str(refused.value)
    assert message.startswith(f"cannot reach the catalog database {url}: ")
    assert PASSWORD not in message


def test_a_wrong_password_is_refused_without_printing_either(postgres_url: str) -> None:
    with pytest.raises(CatalogUnreachable) as refused:
        PostgresCatalog(postgres_url, password="not-the-password").open()
    message = str(refused.value)
    assert postgres_url in message and "password authentication failed" in message
    assert "not-the-password" not in message and PASSWORD not in message


def test_a_password_in_a_url_is_never_shown() -> None:
    assert redacted("postgresql://u:secret@db.example:5433/c?sslmode=require") == (
        "postgresql://u@db.example:5433/c?sslmode=require"
    )
    assert redacted("postgresql://u@db/c") == "postgresql://u@db/c"
