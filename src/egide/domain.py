"""Plain values shared by every layer, and the domain errors the S3 layer maps to S3 codes."""

from __future__ import annotations

import functools
import os
import re
import time
from dataclasses import dataclass, field


def new_id() -> bytes:
    """A random 128-bit id: opaque, reveals nothing, never reused."""
    return os.urandom(16)


@dataclass(frozen=True)
class Bucket:
    id: bytes
    name: str
    created: float
    wrapped_key: bytes


@dataclass(frozen=True)
class Part:
    """One part of a multipart upload (or of the object it completed into).

    `seq` is the attempt's own number, unique within the upload: it enters its nonces, so a
    part uploaded again under the same `number` never reuses the nonces of the attempt it
    replaces (DESIGN.md, Blocks). `pid`, a random id drawn for each attempt, names its shard
    files (decision 0018: nothing on a site ties them to their version or to the other parts);
    an attempt written before has none and its files are named by version id and seq.
    """

    number: int
    seq: int
    size: int
    etag: str
    last_modified: float = 0.0
    #: x-amz-checksum-<algorithm> → base64 value, as the client sent it.
    checksums: dict[str, str] = field(default_factory=dict)
    #: The part attempt's own file id (decision 0018); b"": its files are named by the
    #: version id and seq (parts written before that decision).
    pid: bytes = b""
    #: The plaintext bytes its blocks hold, padding included (decision 0017); None: `size`.
    padded_size: int | None = None

    @property
    def stored_size(self) -> int:
        """The size its blocks are laid out for (egide.coding.blocks.Layout)."""
        return self.size if self.padded_size is None else self.padded_size

    def fields(self) -> list[object]:
        """The part as the catalog's `versions.parts` and completion records list it (a JSON
        list): number, seq, size, ETag, time, checksums, then its file id (hex, "" for none)
        and its padded size, each left out when it and what follows are absent."""
        listed: list[object] = [
            self.number,
            self.seq,
            self.size,
            self.etag,
            self.last_modified,
            self.checksums,
        ]
        if self.padded_size is not None:
            return [*listed, self.pid.hex(), self.padded_size]
        return [*listed, self.pid.hex()] if self.pid else listed

    @classmethod
    def from_fields(cls, fields: list[object]) -> Part:
        """Raises TypeError or ValueError on a list that is no part."""
        number, seq, size, etag, modified, checksums, *rest = fields
        pid = bytes.fromhex(str(rest[0])) if rest and rest[0] else b""
        if pid and len(pid) != 16:
            raise ValueError("a part file id is 16 bytes")
        padded = int(str(rest[1])) if len(rest) > 1 and rest[1] is not None else None
        if not isinstance(checksums, dict):
            raise TypeError("checksums")
        return cls(
            int(str(number)), int(str(seq)), int(str(size)), str(etag), float(str(modified)),
            {str(k): str(v) for k, v in checksums.items()}, pid, padded,
        )  # fmt: skip

    def file(self, version_id: bytes, index: int) -> str:
        """The name of the file holding shard `index` of this part attempt."""
        return (
            shard_name(self.pid, 0, index) if self.pid else shard_name(version_id, self.seq, index)
        )


@dataclass(frozen=True)
class Upload:
    """A multipart upload in progress. Its id becomes the version id of the completed object,
    and its data key that version's data key."""

    upload_id: bytes
    bucket_id: bytes
    key: str
    created: float
    wrapped_data_key: bytes
    k: int
    m: int
    block_size: int
    sites: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectVersion:
    """One committed version of an object and everything needed to read it back."""

    bucket_id: bytes
    key: str
    version_id: bytes
    size: int
    etag: str
    last_modified: float
    wrapped_data_key: bytes
    k: int
    m: int
    block_size: int
    sites: tuple[str, ...]
    #: Standard headers kept with the object (content-type, cache-control …) and x-amz-meta-*.
    headers: dict[str, str] = field(default_factory=dict)
    #: For a small object written in a pack: the pack file's name on every site, and where
    #: the object's shard segment starts in it (the same offset on every site).
    pack: str | None = None
    pack_offset: int = 0
    #: For an object completed from a multipart upload: its parts, in order (else empty).
    parts: tuple[Part, ...] = ()
    #: The S3 "null" version: written while versioning was never enabled or is suspended. A
    #: key has at most one; a new null version replaces it.
    is_null: bool = True
    #: A delete marker: a version without data that makes its key look deleted.
    delete_marker: bool = False
    #: Object Lock: GOVERNANCE or COMPLIANCE until `retain_until` (epoch seconds), legal hold.
    retention_mode: str | None = None
    retain_until: float | None = None
    legal_hold: bool = False
    #: Order among the versions of its key (higher is newer); set by the catalog, so not
    #: part of a version's identity.
    seq: int = field(default=0, compare=False)
    #: The plaintext bytes its blocks hold, padding included (decision 0017); None: `size`
    #: (written unpadded, or before padding). A multipart version's parts carry their own.
    padded_size: int | None = None

    @property
    def stored_size(self) -> int:
        """The size its blocks are laid out for (egide.coding.blocks.Layout)."""
        return self.size if self.padded_size is None else self.padded_size

    def laid_out(self) -> list[tuple[int, int]]:
        """(part attempt, stored size) of each shard file set holding its blocks."""
        return [(p.seq, p.stored_size) for p in self.parts] or [(0, self.stored_size)]

    @property
    def s3_version_id(self) -> str:
        """The id S3 clients see: "null" for the null version, else the hex of the id."""
        return NULL_VERSION if self.is_null else self.version_id.hex()

    def locked(self, now: float, *, bypass_governance: bool = False) -> str | None:
        """Why the version may not be deleted now (legal hold, retention), or None."""
        if self.legal_hold:
            return "it is under legal hold"
        retained = self.retain_until is not None and self.retain_until > now
        if retained and (self.retention_mode == "COMPLIANCE" or not bypass_governance):
            until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.retain_until))
            return f"it is retained in {self.retention_mode} mode until {until}"
        return None

    @functools.cached_property
    def _part_file_ids(self) -> dict[int, bytes]:
        return {part.seq: part.pid for part in self.parts if part.pid}

    def part_file(self, seq: int) -> tuple[bytes, int]:
        """The (id, seq) that name the files of part attempt `seq` and that their clear header
        holds: its random part file id and 0 (decision 0018), else the version id and `seq`."""
        pid = self._part_file_ids.get(seq) if seq else None
        return (pid, 0) if pid else (self.version_id, seq)

    def shard(self, index: int, seq: int = 0) -> str:
        """The name of the file holding shard `index` (of part attempt `seq`) on its site."""
        return self.pack if self.pack is not None else shard_name(*self.part_file(seq), index)

    def shard_files(self) -> list[tuple[str, str]]:
        """(site, file) of every shard file the version owns (a pack's files are shared)."""
        # A multipart object also owns its completion record, part attempt 0 (engine.manifest).
        seqs = [0, *(part.seq for part in self.parts)]
        return [
            (site, shard_name(*self.part_file(seq), i))
            for seq in seqs
            for i, site in enumerate(self.sites)
        ]


NULL_VERSION = "null"


#: A job's states. queued → running → done | failed; paused and cancelled by request.
JOB_STATES = ("queued", "running", "paused", "cancelled", "done", "failed")
JOB_FINAL = ("cancelled", "done", "failed")


@dataclass(frozen=True)
class Job:
    """A maintenance job (repair, scrub, evacuate …) as the catalog keeps it: where it stands
    (`cursor`, JSON the job's own code reads back) survives a crash, so it resumes there."""

    id: int
    kind: str
    params: dict[str, object]
    state: str
    cursor: dict[str, object] | None
    progress: dict[str, int]
    created: float
    updated: float
    owner: str | None = None
    lease_until: float | None = None
    error: str | None = None

    @property
    def final(self) -> bool:
        return self.state in JOB_FINAL


#: An access key's status (IAM's words): an Inactive key is refused until enabled again.
KEY_ACTIVE = "Active"
KEY_INACTIVE = "Inactive"
#: The user every deployment has: the first key and every key from before users existed.
ADMIN_USER = "admin"


def user_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:user/{name}"


def group_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:group/{name}"


def role_arn(account: str, name: str) -> str:
    return f"arn:aws:iam::{account}:role/{name}"


#: A role's longest and shortest session (IAM's MaxSessionDuration bounds), its default.
ROLE_MAX_SESSION_BOUNDS = (900, 43_200)
ROLE_DEFAULT_MAX_SESSION = 3600


@dataclass(frozen=True)
class Role:
    """What temporary credentials are issued for (STS): who may assume it is its trust policy
    (IAM JSON naming principals), what its sessions may do are its attached policies."""

    name: str
    #: IAM's unique id (AROA…), part of every session's AssumedRoleId.
    id: str
    created: float
    trust_policy: str
    #: Longest session AssumeRole may ask for, in seconds (15 min to 12 h).
    max_session: int = ROLE_DEFAULT_MAX_SESSION


@dataclass(frozen=True)
class User:
    """A person or a program of the organisation's account; it signs with its access keys."""

    name: str
    #: IAM's unique id (AIDA…), never reused even when a user of the same name comes back.
    id: str
    created: float


@dataclass(frozen=True)
class Group:
    name: str
    id: str
    created: float
    #: Names of the users in the group, sorted.
    members: tuple[str, ...] = ()


@dataclass(frozen=True)
class AccessKey:
    """An access key of a user (its secret sealed apart, in the catalog and the record)."""

    access_key: str
    user: str
    status: str
    created: float
    #: Wall time after which the key is refused; None: never.
    expires: float | None = None

    def usable(self, now: float) -> bool:
        return self.status == KEY_ACTIVE and (self.expires is None or now < self.expires)


def parse_version_id(text: str) -> bytes | None:
    """The version id bytes of an S3 version id; None for "null". Raises InvalidVersionId."""
    if text == NULL_VERSION:
        return None
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 16 or text != raw.hex():
        raise InvalidVersionId(text)
    return raw


@dataclass(frozen=True)
class WriteCondition:
    """A conditional write, decided in the committing transaction so racing writers cannot
    both win: If-None-Match: * (only if the key has no current object) or an ETag (only if the
    current object does not have it), If-Match (only if the current object has this ETag)."""

    if_none_match: str | None = None
    if_match: str | None = None
    #: Only if the key's newest version is still this one (by id, not ETag: a lifecycle rule
    #: decided on that version, and a newer write of the same bytes must not be hidden).
    if_version: bytes | None = None

    def check(self, key: str, current: ObjectVersion | None) -> None:
        """Raise PreconditionFailed (or KeyNotFound for If-Match on no object) unless the
        condition holds against the key's newest version (a delete marker counts as none)."""
        live = current is not None and not current.delete_marker
        if self.if_none_match is not None and live:
            assert current is not None
            if self.if_none_match in ("*", current.etag):
                raise PreconditionFailed(f"If-None-Match {self.if_none_match!r} and the key exists")
        if self.if_match is not None:
            if current is None or not live:
                raise KeyNotFound(key)
            if self.if_match not in ("*", current.etag):
                raise PreconditionFailed(f"If-Match {self.if_match!r}: the ETag differs")
        if self.if_version is not None and (
            current is None or current.version_id != self.if_version
        ):
            raise PreconditionFailed("the key's newest version changed")


def shard_name(version_id: bytes, part: int, index: int) -> str:
    """Opaque shard file name: a random id (a version's, or a part attempt's own, decision
    0018), the part attempt (0 since then) and the piece index only."""
    return f"{version_id.hex()}-{part}-{index}"


#: What a clear shard header holds where it once held the bucket id (decision 0018).
NO_BUCKET_ID = bytes(16)


#: Bucket key records (egide.engine.keyrecords).
KEY_RECORD_PREFIX = "keys-"
MARKER_RECORD_PREFIX = "mark-"
#: Before decision 0018 record names carried their bucket id; such names are still read.
_MARKER_RECORD = re.compile(r"^mark-(?:([0-9a-f]{32})-)?([0-9a-f]{32})$")
#: Where a record name has no bucket id (decision 0018): the bucket is found by its key.
NO_BUCKET = b""


def marker_record_name(version_id: bytes) -> str:
    """The file of a delete marker's record on a site (egide.engine.markers): the marker's
    random version id only, so that nothing in it names or groups a bucket (decision 0018)."""
    return f"{MARKER_RECORD_PREFIX}{version_id.hex()}"


def legacy_marker_record_name(bucket_id: bytes, version_id: bytes) -> str:
    """The name a marker record had before decision 0018 (still read, spread and collected)."""
    return f"{MARKER_RECORD_PREFIX}{bucket_id.hex()}-{version_id.hex()}"


def parse_marker_record_name(name: str) -> tuple[bytes, bytes] | None:
    """(bucket id, version id) of a delete marker record's file name, the bucket id NO_BUCKET
    in a name of decision 0018; None for other names."""
    found = _MARKER_RECORD.match(name)
    if not found:
        return None
    return (bytes.fromhex(found[1]) if found[1] else NO_BUCKET, bytes.fromhex(found[2]))


#: The version header holding its tags, query-encoded in key order (egide.s3.tagging).
TAGGING_HEADER = "x-amz-tagging"
#: Where s3/access.py keeps a version's owner and ACL in its headers (never returned to
#: clients; the ACL is part of the version's changeable state, in amendment records).
OWNER_HEADER = "x-egide-owner"
ACL_HEADER = "x-egide-acl"

AMENDMENT_PREFIX = "amend-"
_AMENDMENT = re.compile(r"^amend-(?:([0-9a-f]{32})-)?([0-9a-f]{32})-(\d{1,20})$")


def amendment_name(version_id: bytes, number: int) -> str:
    """The file of a version's amendment record (egide.engine.amendments): its random version
    id and a number that grows with each change; no bucket id (decision 0018)."""
    return f"{AMENDMENT_PREFIX}{version_id.hex()}-{number}"


def legacy_amendment_name(bucket_id: bytes, version_id: bytes, number: int) -> str:
    """The name an amendment record had before decision 0018 (still read and collected)."""
    return f"{AMENDMENT_PREFIX}{bucket_id.hex()}-{version_id.hex()}-{number}"


def parse_amendment_name(name: str) -> tuple[bytes, bytes, int] | None:
    """(bucket id, version id, number) of an amendment record's file name, the bucket id
    NO_BUCKET in a name of decision 0018; None otherwise."""
    found = _AMENDMENT.match(name)
    if not found:
        return None
    bucket_id = bytes.fromhex(found[1]) if found[1] else NO_BUCKET
    return (bucket_id, bytes.fromhex(found[2]), int(found[3]))


SETTINGS_PREFIX = "bset-"
_SETTINGS = re.compile(r"^bset-([0-9a-f]{32})-(\d{1,20})$")
_SETTINGS_RECORD = re.compile(r"^bset-([0-9a-f]{32})$")


def settings_record_name(record_id: bytes) -> str:
    """The file of a bucket's settings record (egide.engine.settingsrecords): a random id
    drawn for each record, which the catalog keeps as the bucket's current one (decision
    0018); the bucket id and number are sealed inside."""
    return f"{SETTINGS_PREFIX}{record_id.hex()}"


#: The bucket setting naming the bucket's current settings record (kept by the catalog only).
SETTINGS_RECORD_SETTING = "settings-record"


def is_settings_record_name(name: str) -> bool:
    """Whether `name` is a settings record's name of decision 0018 (random id only)."""
    return _SETTINGS_RECORD.match(name) is not None


def legacy_settings_record_name(bucket_id: bytes, number: int) -> str:
    """The name a settings record had before decision 0018 (still read and collected)."""
    return f"{SETTINGS_PREFIX}{bucket_id.hex()}-{number}"


def parse_settings_record_name(name: str) -> tuple[bytes, int] | None:
    """(bucket id, number) of a settings record's name from before decision 0018; None
    otherwise (a newer one names neither: they are sealed inside)."""
    found = _SETTINGS.match(name)
    return (bytes.fromhex(found[1]), int(found[2])) if found else None


CREDENTIALS_PREFIX = "creds-"
_CREDENTIALS = re.compile(r"^creds-(\d{1,20})$")


def credentials_record_name(number: int) -> str:
    """The file of the credentials record (egide.engine.credentialrecords)."""
    return f"{CREDENTIALS_PREFIX}{number}"


def parse_credentials_record_name(name: str) -> tuple[bytes, int] | None:
    """(b"", number) of a credentials record's file name (one series: the id is empty)."""
    found = _CREDENTIALS.match(name)
    return (b"", int(found[1])) if found else None


#: The small records kept on every site beside the shards (decision 0016): not object data.
SITE_RECORD_PREFIXES = (
    KEY_RECORD_PREFIX,
    MARKER_RECORD_PREFIX,
    AMENDMENT_PREFIX,
    SETTINGS_PREFIX,
    CREDENTIALS_PREFIX,
)


class DomainError(Exception):
    """Base of the errors the engine raises for the API layer to translate."""


class BucketNotFound(DomainError):
    pass


class BucketExists(DomainError):
    pass


class BucketNotEmpty(DomainError):
    pass


class KeyNotFound(DomainError):
    pass


class ShardsUnavailable(DomainError):
    """Fewer than k healthy shards of a block could be read: the object cannot be served now."""


class NoSuchUpload(DomainError):
    """The multipart upload does not exist: never created, completed or aborted."""


class InvalidPart(DomainError):
    """A part named in a completion was not uploaded, or its ETag differs."""


class SitesUnavailable(DomainError):
    """A write could not place all its shards; nothing was committed. `sites` names the sites
    that failed, so that placement can leave them out of the next attempt."""

    def __init__(self, message: str, sites: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.sites = sites


class NoSuchVersion(DomainError):
    """No version of the key has this id."""


class InvalidVersionId(DomainError):
    """The text is not a version id Égide could have issued."""


class DeleteMarkerHit(DomainError):
    """GET/HEAD named a delete marker by its version id (S3 answers 405)."""

    def __init__(self, marker: ObjectVersion) -> None:
        super().__init__(marker.key)
        self.marker = marker


class CurrentIsDeleteMarker(KeyNotFound):
    """The key's current version is a delete marker: NoSuchKey, with the marker's headers."""

    def __init__(self, marker: ObjectVersion) -> None:
        super().__init__(marker.key)
        self.marker = marker


class ObjectLocked(DomainError):
    """Object Lock forbids deleting or overwriting this version now."""


class QuotaExceeded(DomainError):
    """A write would take a bucket or the account past a quota (egide.engine.quotas); the
    message names the quota, its value and the usage."""


class ObjectLockNotEnabled(DomainError):
    """A write asked for a retention or legal hold in a bucket without Object Lock."""


class PreconditionFailed(DomainError):
    """A conditional write's condition did not hold at commit."""


class IdentityNotFound(DomainError):
    """No such user, group or access key."""


class IdentityExists(DomainError):
    """A user or group of that name, or an access key of that id, already exists."""


class UserHasKeys(DomainError):
    """A user with access keys is deleted only when asked to delete them too."""


class InvalidIdentityName(DomainError):
    """A user or group name IAM would refuse."""


class IdentityRefused(DomainError):
    """A change the identities do not allow (deleting the user admin)."""
