"""The account, users, groups and access keys in SQLite."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from functools import partial

from egide.catalog.identities import Identities, KeyHolder
from egide.catalog.sqlite.connection import SQLiteConnection
from egide.catalog.sqlite.rights import bump_rights
from egide.domain import (
    AccessKey,
    Group,
    IdentityExists,
    IdentityNotFound,
    Role,
    User,
    UserHasKeys,
)

_KEY_COLUMNS = "access_key, user_name, status, created, expires"
#: The table of each kind of identity a policy attaches to.
_TABLES = {"user": "users", "group": "groups", "role": "roles"}


def _key(row: tuple[object, ...]) -> AccessKey:
    access, user, status, created, expires = row
    return AccessKey(
        str(access), str(user), str(status), float(created),  # type: ignore[arg-type]
        None if expires is None else float(expires),  # type: ignore[arg-type]
    )  # fmt: skip


def _roles(db: sqlite3.Connection) -> list[Role]:
    rows = db.execute(
        "SELECT name, role_id, created, trust_policy, max_session FROM roles ORDER BY name"
    )
    return [Role(str(n), str(i), float(c), str(t), int(m)) for n, i, c, t, m in rows]


def _known(db: sqlite3.Connection, table: str, name: str) -> None:
    if db.execute(f"SELECT 1 FROM {table} WHERE name = ?", (name,)).fetchone() is None:
        raise IdentityNotFound(f"{table[:-1]} {name}")


def _users(db: sqlite3.Connection) -> list[User]:
    rows = db.execute("SELECT name, user_id, created FROM users ORDER BY name")
    return [User(row[0], row[1], row[2]) for row in rows]


def _groups(db: sqlite3.Connection) -> list[Group]:
    members: dict[str, list[str]] = {}
    for group, user in db.execute(
        "SELECT group_name, user_name FROM group_members ORDER BY group_name, user_name"
    ):
        members.setdefault(group, []).append(user)
    return [
        Group(row[0], row[1], row[2], tuple(members.get(row[0], ())))
        for row in db.execute("SELECT name, group_id, created FROM groups ORDER BY name")
    ]


def replace_identities(db: sqlite3.Connection, identities: Identities, now: float) -> None:
    """Recovery's write: the users, groups, policies and keys become exactly these, the account
    id the recorded one. A record from before users (no account) replaces the keys alone, all
    the admin's, each keeping the creation time it had (else `now`)."""
    known = dict(db.execute("SELECT access_key, created FROM credentials"))
    db.execute("DELETE FROM credentials")
    if identities.account is not None:
        db.execute("UPDATE account SET account_id = ?", (identities.account,))
        for table in ("identity_policies", "group_members", "groups", "users", "roles"):
            db.execute(f"DELETE FROM {table}")
        db.executemany(
            "INSERT INTO roles (name, role_id, created, trust_policy, max_session) "
            "VALUES (?, ?, ?, ?, ?)",
            [(r.name, r.id, r.created, r.trust_policy, r.max_session) for r in identities.roles],
        )
        db.executemany(
            "INSERT INTO users (name, user_id, created) VALUES (?, ?, ?)",
            [(u.name, u.id, u.created) for u in identities.users],
        )
        db.executemany(
            "INSERT INTO groups (name, group_id, created) VALUES (?, ?, ?)",
            [(g.name, g.id, g.created) for g in identities.groups],
        )
        db.executemany(
            "INSERT INTO group_members (group_name, user_name) VALUES (?, ?)",
            [(g.name, member) for g in identities.groups for member in g.members],
        )
        db.executemany(
            "INSERT INTO identity_policies (kind, name, policy_name, document) VALUES (?, ?, ?, ?)",
            identities.policies,
        )
    db.executemany(
        f"INSERT INTO credentials ({_KEY_COLUMNS}, sealed_secret) VALUES (?, ?, ?, ?, ?, ?)",
        [
            (k.access_key, k.user, k.status, k.created or known.get(k.access_key, now), k.expires,
             sealed)
            for k, sealed in identities.keys
        ],
    )  # fmt: skip


def _create(kind: str, new: User | Group) -> Callable[[sqlite3.Connection], None]:
    """Insert a user or a group (`kind`); IdentityExists if one of that name exists."""

    def run(db: sqlite3.Connection) -> None:
        try:
            db.execute(
                f"INSERT INTO {_TABLES[kind]} (name, {kind}_id, created) VALUES (?, ?, ?)",
                (new.name, new.id, new.created),
            )
        except sqlite3.IntegrityError as exc:
            raise IdentityExists(f"{kind} {new.name}") from exc
        bump_rights(db)

    return run


class SQLiteIdentities(SQLiteConnection):
    """`catalog.identities.UserCatalog`, `IdentityPolicyCatalog` and `AccessKeyCatalog`."""

    async def account_id(self) -> str:
        return self._read(
            lambda db: str(db.execute("SELECT account_id FROM account").fetchone()[0])
        )

    async def get_account_setting(self, name: str) -> str | None:
        def run(db: sqlite3.Connection) -> str | None:
            row = db.execute(
                "SELECT value FROM account_settings WHERE name = ?", (name,)
            ).fetchone()
            return str(row[0]) if row else None

        return self._read(run)

    async def put_account_setting(self, name: str, value: str | None) -> None:
        def run(db: sqlite3.Connection) -> None:
            if value is None:
                db.execute("DELETE FROM account_settings WHERE name = ?", (name,))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO account_settings (name, value) VALUES (?, ?)",
                    (name, value),
                )
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def identities(self) -> Identities:
        def run(db: sqlite3.Connection) -> Identities:
            keys = db.execute(
                f"SELECT {_KEY_COLUMNS}, sealed_secret FROM credentials "
                "ORDER BY user_name, created, access_key"
            )
            keyed = tuple((_key(row[:5]), bytes(row[5])) for row in keys)
            policies = db.execute(
                "SELECT kind, name, policy_name, document FROM identity_policies "
                "ORDER BY kind, name, policy_name"
            )
            return Identities(
                str(db.execute("SELECT account_id FROM account").fetchone()[0]),
                tuple(_users(db)),
                tuple(_groups(db)),
                keyed,
                tuple((str(k), str(n), str(p), str(d)) for k, n, p, d in policies),
                tuple(_roles(db)),
            )

        return self._read(run)

    async def create_user(self, user: User) -> None:
        await self._call(partial(self._in_transaction, _create("user", user)))

    async def users(self) -> list[User]:
        return self._read(_users)

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        def run(db: sqlite3.Connection) -> list[str]:
            _known(db, "users", name)
            keys = [
                str(row[0])
                for row in db.execute(
                    "SELECT access_key FROM credentials WHERE user_name = ? ORDER BY created",
                    (name,),
                )
            ]
            if keys and not force:
                raise UserHasKeys(f"user {name} has {len(keys)} access key(s)")
            db.execute("DELETE FROM credentials WHERE user_name = ?", (name,))
            db.execute("DELETE FROM group_members WHERE user_name = ?", (name,))
            db.execute("DELETE FROM identity_policies WHERE kind = 'user' AND name = ?", (name,))
            db.execute("DELETE FROM users WHERE name = ?", (name,))
            bump_rights(db)
            return keys

        return await self._call(partial(self._in_transaction, run))

    async def create_group(self, group: Group) -> None:
        await self._call(partial(self._in_transaction, _create("group", group)))

    async def groups(self) -> list[Group]:
        return self._read(_groups)

    async def delete_group(self, name: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            _known(db, "groups", name)
            db.execute("DELETE FROM group_members WHERE group_name = ?", (name,))
            db.execute("DELETE FROM identity_policies WHERE kind = 'group' AND name = ?", (name,))
            db.execute("DELETE FROM groups WHERE name = ?", (name,))
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def set_group_member(self, group: str, user: str, member: bool) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            _known(db, "groups", group)
            _known(db, "users", user)
            if member:
                sql = "INSERT OR IGNORE INTO group_members (group_name, user_name) VALUES (?, ?)"
            else:
                sql = "DELETE FROM group_members WHERE group_name = ? AND user_name = ?"
            changed = db.execute(sql, (group, user)).rowcount > 0
            if changed:
                bump_rights(db)
            return changed

        return await self._call(partial(self._in_transaction, run))

    async def put_identity_policy(self, kind: str, name: str, policy: str, document: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            _known(db, _TABLES[kind], name)
            db.execute(
                "INSERT OR REPLACE INTO identity_policies (kind, name, policy_name, document) "
                "VALUES (?, ?, ?, ?)",
                (kind, name, policy, document),
            )
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def identity_policies(self, kind: str, name: str) -> dict[str, str]:
        rows = self._read(
            lambda db: db.execute(
                "SELECT policy_name, document FROM identity_policies WHERE kind = ? AND name = ? "
                "ORDER BY policy_name",
                (kind, name),
            ).fetchall()
        )
        return {str(policy): str(document) for policy, document in rows}

    async def delete_identity_policy(self, kind: str, name: str, policy: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            changed = db.execute(
                "DELETE FROM identity_policies WHERE kind = ? AND name = ? AND policy_name = ?",
                (kind, name, policy),
            ).rowcount
            if not changed:
                raise IdentityNotFound(f"policy {policy} of {kind} {name}")
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def add_access_key(self, key: AccessKey, sealed_secret: bytes) -> None:
        def run(db: sqlite3.Connection) -> None:
            _known(db, "users", key.user)
            try:
                db.execute(
                    f"INSERT INTO credentials ({_KEY_COLUMNS}, sealed_secret) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    (key.access_key, key.user, key.status, key.created, key.expires,
                     sealed_secret),
                )  # fmt: skip
            except sqlite3.IntegrityError as exc:
                raise IdentityExists(f"access key {key.access_key}") from exc
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def access_keys(self, user: str | None = None) -> list[AccessKey]:
        def run(db: sqlite3.Connection) -> list[AccessKey]:
            sql, args = f"SELECT {_KEY_COLUMNS} FROM credentials", tuple[str, ...]()
            if user is not None:
                sql, args = sql + " WHERE user_name = ?", (user,)
            return [_key(row) for row in db.execute(sql + " ORDER BY user_name, created", args)]

        return self._read(run)

    async def key_holder(self, access_key: str) -> KeyHolder | None:
        def run(db: sqlite3.Connection) -> KeyHolder | None:
            row = db.execute(
                f"SELECT {_KEY_COLUMNS}, sealed_secret FROM credentials WHERE access_key = ?",
                (access_key,),
            ).fetchone()
            if row is None:
                return None
            groups = db.execute(
                "SELECT group_name FROM group_members WHERE user_name = ? ORDER BY group_name",
                (row[1],),
            )
            return KeyHolder(_key(row[:5]), bytes(row[5]), tuple(g[0] for g in groups))

        return self._read(run)

    async def set_access_key_status(self, access_key: str, status: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            changed = db.execute(
                "UPDATE credentials SET status = ? WHERE access_key = ?", (status, access_key)
            ).rowcount
            if not changed:
                raise IdentityNotFound(f"access key {access_key}")
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))

    async def delete_access_key(self, access_key: str) -> None:
        def run(db: sqlite3.Connection) -> None:
            changed = db.execute(
                "DELETE FROM credentials WHERE access_key = ?", (access_key,)
            ).rowcount
            if not changed:
                raise IdentityNotFound(f"access key {access_key}")
            bump_rights(db)

        await self._call(partial(self._in_transaction, run))
