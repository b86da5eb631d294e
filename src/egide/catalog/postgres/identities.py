"""The account, users, groups and access keys in PostgreSQL. A write that depends on an
identity existing share-locks its row (`known`), and deleting one locks it for update: a key
added for a user being deleted either comes first (and is deleted with it) or fails."""

from __future__ import annotations

from psycopg.errors import UniqueViolation

from egide.catalog.identities import Identities, KeyHolder
from egide.catalog.postgres.connection import Db, PostgresConnection, one, rows, run
from egide.catalog.postgres.rights import bump_rights
from egide.catalog.postgres.roles import role_of
from egide.domain import AccessKey, Group, IdentityExists, IdentityNotFound, User, UserHasKeys

_KEY_COLUMNS = "access_key, user_name, status, created, expires"
#: The table of each kind of identity a policy attaches to.
_TABLES = {"user": "users", "group": "groups", "role": "roles"}


def _key(row: tuple[object, ...]) -> AccessKey:
    access, user, status, created, expires = row
    return AccessKey(
        str(access), str(user), str(status), float(created),  # type: ignore[arg-type]
        None if expires is None else float(expires),  # type: ignore[arg-type]
    )  # fmt: skip


async def known(db: Db, table: str, name: str, lock: str = "FOR SHARE") -> None:
    """IdentityNotFound unless `name` is in `table`; its row stays locked (`lock`)."""
    if await one(db, f"SELECT 1 FROM {table} WHERE name = %s {lock}", (name,)) is None:
        raise IdentityNotFound(f"{table[:-1]} {name}")


async def _users(db: Db) -> list[User]:
    found = await rows(db, "SELECT name, user_id, created FROM users ORDER BY name")
    return [User(row[0], row[1], row[2]) for row in found]


async def _groups(db: Db) -> list[Group]:
    members: dict[str, list[str]] = {}
    for group, user in await rows(
        db, "SELECT group_name, user_name FROM group_members ORDER BY group_name, user_name"
    ):
        members.setdefault(group, []).append(user)
    return [
        Group(row[0], row[1], row[2], tuple(members.get(row[0], ())))
        for row in await rows(db, "SELECT name, group_id, created FROM groups ORDER BY name")
    ]


async def replace_identities(db: Db, identities: Identities, now: float) -> None:
    """Recovery's write: the users, groups, policies and keys become exactly these, the account
    id the recorded one. A record from before users (no account) replaces the keys alone, all
    the admin's, each keeping the creation time it had (else `now`)."""
    had = {
        str(k): float(c) for k, c in await rows(db, "SELECT access_key, created FROM credentials")
    }
    await db.execute("DELETE FROM credentials")
    async with db.cursor() as cur:
        if identities.account is not None:
            await cur.execute("UPDATE account SET account_id = %s", (identities.account,))
            for table in ("identity_policies", "group_members", "groups", "users", "roles"):
                await cur.execute(f"DELETE FROM {table}")
            inserts: list[tuple[str, list[tuple[object, ...]]]] = [
                ("INSERT INTO roles (name, role_id, created, trust_policy, max_session) "
                 "VALUES (%s, %s, %s, %s, %s)",
                 [(r.name, r.id, r.created, r.trust_policy, r.max_session)
                  for r in identities.roles]),
                ("INSERT INTO users (name, user_id, created) VALUES (%s, %s, %s)",
                 [(u.name, u.id, u.created) for u in identities.users]),
                ("INSERT INTO groups (name, group_id, created) VALUES (%s, %s, %s)",
                 [(g.name, g.id, g.created) for g in identities.groups]),
                ("INSERT INTO group_members (group_name, user_name) VALUES (%s, %s)",
                 [(g.name, member) for g in identities.groups for member in g.members]),
                ("INSERT INTO identity_policies (kind, name, policy_name, document) "
                 "VALUES (%s, %s, %s, %s)", list(identities.policies)),
            ]  # fmt: skip
            for sql, values in inserts:
                if values:
                    await cur.executemany(sql, values)
        keys = [
            (k.access_key, k.user, k.status, k.created or had.get(k.access_key, now), k.expires,
             sealed)
            for k, sealed in identities.keys
        ]  # fmt: skip
        if keys:
            await cur.executemany(
                f"INSERT INTO credentials ({_KEY_COLUMNS}, sealed_secret) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                keys,
            )


class PostgresIdentities(PostgresConnection):
    """`catalog.identities.UserCatalog`, `IdentityPolicyCatalog` and `AccessKeyCatalog`."""

    async def account_id(self) -> str:
        async def read(db: Db) -> str:
            row = await one(db, "SELECT account_id FROM account")
            assert row is not None
            return str(row[0])

        return await self._read(read)

    async def get_account_setting(self, name: str) -> str | None:
        async def read(db: Db) -> str | None:
            row = await one(db, "SELECT value FROM account_settings WHERE name = %s", (name,))
            return str(row[0]) if row else None

        return await self._read(read)

    async def put_account_setting(self, name: str, value: str | None) -> None:
        async def write(db: Db) -> None:
            if value is None:
                await db.execute("DELETE FROM account_settings WHERE name = %s", (name,))
            else:
                await db.execute(
                    "INSERT INTO account_settings (name, value) VALUES (%s, %s) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    (name, value),
                )
            await bump_rights(db)

        await self._transaction(write)

    async def identities(self) -> Identities:
        """All of them as of one instant (one REPEATABLE READ snapshot)."""

        async def read(db: Db) -> Identities:
            await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            keys = await rows(
                db,
                f"SELECT {_KEY_COLUMNS}, sealed_secret FROM credentials "
                "ORDER BY user_name, created, access_key",
            )
            policies = await rows(
                db,
                "SELECT kind, name, policy_name, document FROM identity_policies "
                "ORDER BY kind, name, policy_name",
            )
            account = await one(db, "SELECT account_id FROM account")
            assert account is not None
            roles = await rows(
                db,
                "SELECT name, role_id, created, trust_policy, max_session FROM roles ORDER BY name",
            )
            return Identities(
                str(account[0]),
                tuple(await _users(db)),
                tuple(await _groups(db)),
                tuple((_key(row[:5]), bytes(row[5])) for row in keys),
                tuple((str(k), str(n), str(p), str(d)) for k, n, p, d in policies),
                tuple(role_of(r) for r in roles),
            )

        return await self._transaction(read)

    async def _create(self, kind: str, new: User | Group) -> None:
        """Insert a user or a group (`kind`); IdentityExists if one of that name exists."""

        async def write(db: Db) -> None:
            await db.execute(
                f"INSERT INTO {_TABLES[kind]} (name, {kind}_id, created) VALUES (%s, %s, %s)",
                (new.name, new.id, new.created),
            )
            await bump_rights(db)

        try:
            await self._transaction(write)
        except UniqueViolation as exc:
            raise IdentityExists(f"{kind} {new.name}") from exc

    async def create_user(self, user: User) -> None:
        await self._create("user", user)

    async def users(self) -> list[User]:
        return await self._read(_users)

    async def delete_user(self, name: str, *, force: bool = False) -> list[str]:
        async def write(db: Db) -> list[str]:
            await known(db, "users", name, "FOR UPDATE")
            keys = [
                str(row[0])
                for row in await rows(
                    db,
                    "SELECT access_key FROM credentials WHERE user_name = %s ORDER BY created",
                    (name,),
                )
            ]
            if keys and not force:
                raise UserHasKeys(f"user {name} has {len(keys)} access key(s)")
            await db.execute("DELETE FROM credentials WHERE user_name = %s", (name,))
            await db.execute("DELETE FROM group_members WHERE user_name = %s", (name,))
            await db.execute(
                "DELETE FROM identity_policies WHERE kind = 'user' AND name = %s", (name,)
            )
            await db.execute("DELETE FROM users WHERE name = %s", (name,))
            await bump_rights(db)
            return keys

        return await self._transaction(write)

    async def create_group(self, group: Group) -> None:
        await self._create("group", group)

    async def groups(self) -> list[Group]:
        async def read(db: Db) -> list[Group]:
            await db.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            return await _groups(db)

        return await self._transaction(read)

    async def delete_group(self, name: str) -> None:
        async def write(db: Db) -> None:
            await known(db, "groups", name, "FOR UPDATE")
            await db.execute("DELETE FROM group_members WHERE group_name = %s", (name,))
            await db.execute(
                "DELETE FROM identity_policies WHERE kind = 'group' AND name = %s", (name,)
            )
            await db.execute("DELETE FROM groups WHERE name = %s", (name,))
            await bump_rights(db)

        await self._transaction(write)

    async def set_group_member(self, group: str, user: str, member: bool) -> bool:
        async def write(db: Db) -> bool:
            await known(db, "groups", group)
            await known(db, "users", user)
            if member:
                sql = (
                    "INSERT INTO group_members (group_name, user_name) VALUES (%s, %s) "
                    "ON CONFLICT DO NOTHING"
                )
            else:
                sql = "DELETE FROM group_members WHERE group_name = %s AND user_name = %s"
            changed = await run(db, sql, (group, user)) > 0
            if changed:
                await bump_rights(db)
            return changed

        return await self._transaction(write)

    async def put_identity_policy(self, kind: str, name: str, policy: str, document: str) -> None:
        async def write(db: Db) -> None:
            await known(db, _TABLES[kind], name)
            await db.execute(
                "INSERT INTO identity_policies (kind, name, policy_name, document) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (kind, name, policy_name) "
                "DO UPDATE SET document = excluded.document",
                (kind, name, policy, document),
            )
            await bump_rights(db)

        await self._transaction(write)

    async def identity_policies(self, kind: str, name: str) -> dict[str, str]:
        async def read(db: Db) -> list[tuple[object, ...]]:
            return await rows(
                db,
                "SELECT policy_name, document FROM identity_policies "
                "WHERE kind = %s AND name = %s ORDER BY policy_name",
                (kind, name),
            )

        return {str(policy): str(document) for policy, document in await self._read(read)}

    async def delete_identity_policy(self, kind: str, name: str, policy: str) -> None:
        async def write(db: Db) -> None:
            if not await run(
                db,
                "DELETE FROM identity_policies WHERE kind = %s AND name = %s AND policy_name = %s",
                (kind, name, policy),
            ):
                raise IdentityNotFound(f"policy {policy} of {kind} {name}")
            await bump_rights(db)

        await self._transaction(write)

    async def add_access_key(self, key: AccessKey, sealed_secret: bytes) -> None:
        async def write(db: Db) -> None:
            await known(db, "users", key.user)
            await db.execute(
                f"INSERT INTO credentials ({_KEY_COLUMNS}, sealed_secret) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                (key.access_key, key.user, key.status, key.created, key.expires, sealed_secret),
            )
            await bump_rights(db)

        try:
            await self._transaction(write)
        except UniqueViolation as exc:
            raise IdentityExists(f"access key {key.access_key}") from exc

    async def access_keys(self, user: str | None = None) -> list[AccessKey]:
        async def read(db: Db) -> list[AccessKey]:
            sql, args = f"SELECT {_KEY_COLUMNS} FROM credentials", tuple[str, ...]()
            if user is not None:
                sql, args = sql + " WHERE user_name = %s", (user,)
            return [_key(row) for row in await rows(db, sql + " ORDER BY user_name, created", args)]

        return await self._read(read)

    async def key_holder(self, access_key: str) -> KeyHolder | None:
        async def read(db: Db) -> KeyHolder | None:
            row = await one(
                db,
                f"SELECT {_KEY_COLUMNS}, sealed_secret, ARRAY(SELECT group_name "
                "FROM group_members g WHERE g.user_name = c.user_name ORDER BY group_name) "
                "FROM credentials c WHERE access_key = %s",
                (access_key,),
            )
            if row is None:
                return None
            return KeyHolder(_key(row[:5]), bytes(row[5]), tuple(row[6]))

        return await self._read(read)

    async def set_access_key_status(self, access_key: str, status: str) -> None:
        async def write(db: Db) -> None:
            if not await run(
                db,
                "UPDATE credentials SET status = %s WHERE access_key = %s",
                (status, access_key),
            ):
                raise IdentityNotFound(f"access key {access_key}")
            await bump_rights(db)

        await self._transaction(write)

    async def delete_access_key(self, access_key: str) -> None:
        async def write(db: Db) -> None:
            if not await run(db, "DELETE FROM credentials WHERE access_key = %s", (access_key,)):
                raise IdentityNotFound(f"access key {access_key}")
            await bump_rights(db)

        await self._transaction(write)
