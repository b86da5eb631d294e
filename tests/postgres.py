"""A real PostgreSQL server for the tests, from the Debian `postgresql` package: `initdb` into a
temporary directory, `pg_ctl start` on a free port (its unix socket in that directory too),
one fresh database per test, stopped and removed at the end of the session.

initdb refuses to run as root: as root (CI, containers) the cluster is made and run by the
unprivileged `nobody`, which owns the temporary directory. Without the binaries (no
`/usr/lib/postgresql/*/bin/initdb`) the tests that need the server are skipped, saying so;
`.ci/run` installs them.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from egide.catalog.postgres.schema import migrate

#: The user the cluster is created for (its superuser). Over TCP, as Égide connects, it needs
#: its password (scram-sha-256); over the unix socket the fixture itself is trusted.
SUPERUSER = "egide"
PASSWORD = "pg-test-secret-7f3a"


def postgres_bin() -> Path | None:
    """The newest installed PostgreSQL's binaries, if any."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: (
            int(Path(p).parent.parent.name) if Path(p).parent.parent.name.isdigit() else 0
        ),
    )
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresServer:
    """A running cluster on 127.0.0.1:`port`, trusting local connections."""

    bindir: Path
    root: Path
    port: int = field(default_factory=_free_port)
    _names: Iterator[int] = field(default_factory=itertools.count)
    _template: bool = False

    @property
    def data(self) -> Path:
        return self.root / "data"

    def _as_owner(self, *args: str) -> list[str]:
        """`args` run as the cluster's owner: `nobody` when this process is root."""
        if os.geteuid() == 0:
            return ["runuser", "-u", "nobody", "--", *args]
        return list(args)

    def start(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "nobody")
        subprocess.run(
            self._as_owner(
                str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8",
                "--locale=C", "--no-sync",
            ),
            check=True, capture_output=True,
        )  # fmt: skip
        # Durability is not what the tests look at: no fsync keeps a database per test cheap.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l",
                str(self.root / "server.log"), "-o", options, "-w", "start",
            ),
            check=True, capture_output=True,
        )  # fmt: skip
        with self._admin() as db:
            db.execute(f"ALTER USER {SUPERUSER} PASSWORD '{PASSWORD}'")

    def _admin(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A connection over the unix socket (trusted: no password)."""
        return psycopg.connect(
            host=str(self.root), port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"
            ),
            capture_output=True,
        )

    def url(self, database: str = "postgres") -> str:
        """The database's URL as egide.toml holds it: without the password."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self, *, empty: bool = False) -> str:
        """A fresh database's URL: a copy of a catalog migrated once (migrating each one
        would double a test's set-up), or `empty` (no schema at all)."""
        name = f"test_{next(self._names)}"
        template = "template0" if empty else self._catalog_template()
        with self._admin() as db:
            db.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        return self.url(name)

    def drop_database(self, url: str) -> None:
        """Drop a test's database (each is a few megabytes: a session makes hundreds)."""
        name = url.rsplit("/", 1)[1]
        with self._admin() as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _catalog_template(self) -> str:
        if not self._template:
            with self._admin() as db:
                db.execute('CREATE DATABASE "catalog_template" TEMPLATE template0')
            with self._admin("catalog_template") as db:
                db.autocommit = False
                migrate(db, "catalog_template")
            self._template = True
        return "catalog_template"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """The session's PostgreSQL server; skips when PostgreSQL is not installed."""
    bindir = postgres_bin()
    if bindir is None:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb)")
    root = Path(tempfile.mkdtemp(prefix="egide-pg-"))
    server = PostgresServer(bindir, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh catalog database of the session's server, for one test (password: PASSWORD),
    dropped after it."""
    url = postgres_server.new_database()
    yield url
    postgres_server.drop_database(url)
