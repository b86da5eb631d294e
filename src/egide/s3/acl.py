"""S3 access control lists as values: owners, grants, canned ACLs, the x-amz-grant-* headers
and the AccessControlPolicy document, and which permission grants which action
(docs/decisions/0031-owners-and-acls.md).

Pure: reading and changing where ACLs are kept is s3/access.py's. An owner is its canonical
ID (64 hex digits, `canonical_id`) and display name; a grant names a canonical ID or one of
S3's groups (AllUsers, AuthenticatedUsers, LogDelivery).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from xml.etree.ElementTree import Element

from egide.s3 import errors
from egide.s3.xml import document, element, parse
from egide.web.request import RequestHead

GROUPS = "http://acs.amazonaws.com/groups/"
ALL_USERS = GROUPS + "global/AllUsers"
AUTHENTICATED_USERS = GROUPS + "global/AuthenticatedUsers"
LOG_DELIVERY = GROUPS + "s3/LogDelivery"
PUBLIC_GROUPS = frozenset({ALL_USERS, AUTHENTICATED_USERS})
PERMISSIONS = ("FULL_CONTROL", "WRITE", "WRITE_ACP", "READ", "READ_ACP")
GRANT_HEADERS = {
    "x-amz-grant-read": "READ",
    "x-amz-grant-write": "WRITE",
    "x-amz-grant-read-acp": "READ_ACP",
    "x-amz-grant-write-acp": "WRITE_ACP",
    "x-amz-grant-full-control": "FULL_CONTROL",
}
CANNED = (
    "private", "public-read", "public-read-write", "authenticated-read",
    "bucket-owner-read", "bucket-owner-full-control", "log-delivery-write",
)  # fmt: skip
_XSI = "http://www.w3.org/2001/XMLSchema-instance"
_ID = re.compile(r"^[0-9a-f]{64}$")


def canonical_id(account: str, user_id: str) -> str:
    """A user's S3 canonical ID: stable for the user's life, never another user's (its unique
    id AIDA… is never reused)."""
    return hashlib.sha256(f"{account}:{user_id}".encode()).hexdigest()


@dataclass(frozen=True)
class Owner:
    id: str
    name: str

    def stored(self) -> str:
        return f"{self.id}:{self.name}"

    @classmethod
    def from_stored(cls, text: str) -> Owner:
        id_, _, name = text.partition(":")
        return cls(id_, name)

    def xml(self) -> str:
        return element("ID", self.id) + element("DisplayName", self.name)


@dataclass(frozen=True)
class Grant:
    #: "id" (a canonical user ID) or "group" (a group URI).
    kind: str
    grantee: str
    permission: str

    @property
    def public(self) -> bool:
        return self.kind == "group" and self.grantee in PUBLIC_GROUPS


@dataclass(frozen=True)
class Acl:
    owner: Owner
    grants: tuple[Grant, ...]

    @property
    def public(self) -> bool:
        return any(g.public for g in self.grants)

    def stored(self) -> str:
        """The grants as kept beside the owner (JSON)."""
        return json.dumps([[g.kind, g.grantee, g.permission] for g in self.grants])

    @classmethod
    def from_stored(cls, owner: Owner, text: str | None) -> Acl:
        """The ACL kept as `stored()` gave it; none kept: private (the owner, FULL_CONTROL)."""
        if not text:
            return private(owner)
        return cls(owner, tuple(Grant(k, g, p) for k, g, p in json.loads(text)))

    def allows(
        self,
        permissions: frozenset[str],
        caller: str | None,
        *,
        ignore_public: bool = False,
        signed: bool | None = None,
    ) -> bool:
        """Whether a grant gives `caller` (a canonical ID; None: anonymous, or a signed caller
        with none, an STS session, when `signed`) one of `permissions` (FULL_CONTROL counts for
        every one)."""
        wanted = permissions | {"FULL_CONTROL"}
        if signed is None:
            signed = caller is not None
        for grant in self.grants:
            if grant.permission not in wanted or (ignore_public and grant.public):
                continue
            if grant.kind == "id" and caller is not None and grant.grantee == caller:
                return True
            if grant.kind == "group" and (
                grant.grantee == ALL_USERS or (grant.grantee == AUTHENTICATED_USERS and signed)
            ):
                return True
        return False

    def xml(self, names: dict[str, str]) -> bytes:
        """The AccessControlPolicy document (`names`: canonical ID → display name)."""
        out = []
        # Groups first, then users, each in the order given: RGW's order, which s3-tests
        # compares.
        for g in sorted(self.grants, key=lambda g: g.kind != "group"):
            if g.kind == "id":
                who = element("ID", g.grantee) + element("DisplayName", names.get(g.grantee, ""))
                kind = "CanonicalUser"
            else:
                who, kind = element("URI", g.grantee), "Group"
            out.append(
                f'<Grant><Grantee xmlns:xsi="{_XSI}" xsi:type="{kind}">{who}</Grantee>'
                f"{element('Permission', g.permission)}</Grant>"
            )
        inner = f"<Owner>{self.owner.xml()}</Owner><AccessControlList>{''.join(out)}"

        return document("AccessControlPolicy", inner + "</AccessControlList>")


def private(owner: Owner) -> Acl:
    return Acl(owner, (Grant("id", owner.id, "FULL_CONTROL"),))


def canned(name: str, owner: Owner, bucket_owner: Owner | None = None) -> Acl:
    """A canned ACL (x-amz-acl) for a resource of `owner`; `bucket_owner` for an object's."""
    full = Grant("id", owner.id, "FULL_CONTROL")
    extra: tuple[Grant, ...]
    if name == "private":
        extra = ()
    elif name == "public-read":
        extra = (Grant("group", ALL_USERS, "READ"),)
    elif name == "public-read-write":
        extra = (Grant("group", ALL_USERS, "READ"), Grant("group", ALL_USERS, "WRITE"))
    elif name == "authenticated-read":
        extra = (Grant("group", AUTHENTICATED_USERS, "READ"),)
    elif name in ("bucket-owner-read", "bucket-owner-full-control"):
        permission = "READ" if name == "bucket-owner-read" else "FULL_CONTROL"
        extra = ()
        if bucket_owner is not None and bucket_owner.id != owner.id:
            extra = (Grant("id", bucket_owner.id, permission),)
    elif name == "log-delivery-write":
        extra = (Grant("group", LOG_DELIVERY, "WRITE"), Grant("group", LOG_DELIVERY, "READ_ACP"))
    else:
        raise errors.InvalidArgument(
            f"The canned ACL {name!r} is not one of S3's.",
            ArgumentName="x-amz-acl", ArgumentValue=name,
        )  # fmt: skip
    return Acl(owner, (*extra, full))  # RGW's order, which s3-tests compares


def _grantee(text: str, header: str) -> tuple[str, str]:
    kind, _, value = text.strip().partition("=")
    value = value.strip().strip('"')
    kind = kind.strip().lower()
    if kind == "id" and value:
        return "id", value
    if kind == "uri" and value:
        return "group", value
    if kind == "emailaddress":
        raise errors.UnresolvableGrantByEmailAddress(
            "Égide does not resolve grants by e-mail address: grant by canonical ID (id=).",
            EmailAddress=value,
        )
    raise errors.InvalidArgument(
        f"Invalid grantee {text.strip()!r}: expected id=, uri= or emailAddress=.",
        ArgumentName=header, ArgumentValue=text,
    )  # fmt: skip


def _check_grant(grant: Grant) -> Grant:
    if grant.kind == "group" and not grant.grantee.startswith(GROUPS):
        raise errors.InvalidArgument(
            f"Invalid group uri {grant.grantee!r}.", ArgumentName="uri", ArgumentValue=grant.grantee
        )
    if grant.kind == "id" and not _ID.match(grant.grantee):
        raise errors.InvalidArgument(
            f"Invalid id {grant.grantee!r}.", ArgumentName="id", ArgumentValue=grant.grantee
        )
    return grant


def requested(head: RequestHead, owner: Owner, bucket_owner: Owner | None = None) -> Acl | None:
    """The ACL a request's x-amz-acl or x-amz-grant-* headers ask for (None: neither);
    both at once is InvalidRequest, as in S3."""
    name = head.header("x-amz-acl")
    grants = [(h, head.header(h)) for h in GRANT_HEADERS if head.header(h) is not None]
    if name is not None and grants:
        raise errors.InvalidRequest("Specifying both Canned ACLs and Header Grants is not allowed")
    if name is not None:
        return canned(name.strip(), owner, bucket_owner)
    if not grants:
        return None
    out: list[Grant] = []
    for header, value in grants:
        for part in (value or "").split(","):
            kind, grantee = _grantee(part, header)
            out.append(_check_grant(Grant(kind, grantee, GRANT_HEADERS[header])))
    return Acl(owner, tuple(out))


def _text(node: Element | None, tag: str) -> str | None:
    found = None if node is None else node.find(tag)
    return None if found is None or found.text is None else found.text.strip()


def parse_policy(body: bytes, owner: Owner) -> Acl:
    """An AccessControlPolicy document; its Owner must be the resource's owner."""
    try:
        root = parse(body)
    except errors.MalformedXML:
        raise errors.MalformedACLError() from None
    if root.tag != "AccessControlPolicy":
        raise errors.MalformedACLError()
    given = _text(root.find("Owner"), "ID")
    if given is not None and given != owner.id:
        raise errors.AccessDenied("The owner of an ACL cannot be changed.")
    listing = root.find("AccessControlList")
    out: list[Grant] = []
    for node in [] if listing is None else listing.findall("Grant"):
        grantee = node.find("Grantee")
        permission = _text(node, "Permission")
        if grantee is None or permission not in PERMISSIONS:
            raise errors.MalformedACLError()
        kind = next((v for k, v in grantee.attrib.items() if k.endswith("type")), "")
        if kind == "CanonicalUser" and _text(grantee, "ID"):
            out.append(_check_grant(Grant("id", _text(grantee, "ID") or "", permission)))
        elif kind == "Group" and _text(grantee, "URI"):
            out.append(_check_grant(Grant("group", _text(grantee, "URI") or "", permission)))
        elif kind == "AmazonCustomerByEmail":
            _grantee(f"emailAddress={_text(grantee, 'EmailAddress') or ''}", "Grantee")
        else:
            raise errors.MalformedACLError()
    return Acl(owner, tuple(out))


# -- which permission grants which action --------------------------------------------------------

#: On a bucket's ACL (object writes are granted by the bucket's WRITE, as in S3).
BUCKET_PERMISSIONS: dict[str, frozenset[str]] = {
    "s3:ListBucket": frozenset({"READ"}),
    "s3:ListBucketVersions": frozenset({"READ"}),
    "s3:ListBucketMultipartUploads": frozenset({"READ"}),
    "s3:PutObject": frozenset({"WRITE"}),
    "s3:DeleteObject": frozenset({"WRITE"}),
    "s3:DeleteObjectVersion": frozenset({"WRITE"}),
    "s3:AbortMultipartUpload": frozenset({"WRITE"}),
    "s3:GetBucketAcl": frozenset({"READ_ACP"}),
    "s3:PutBucketAcl": frozenset({"WRITE_ACP"}),
}
#: On an object's ACL.
OBJECT_PERMISSIONS: dict[str, frozenset[str]] = {
    "s3:GetObject": frozenset({"READ"}),
    "s3:GetObjectVersion": frozenset({"READ"}),
    "s3:GetObjectTorrent": frozenset({"READ"}),
    "s3:GetObjectAcl": frozenset({"READ_ACP"}),
    "s3:GetObjectVersionAcl": frozenset({"READ_ACP"}),
    "s3:PutObjectAcl": frozenset({"WRITE_ACP"}),
    "s3:PutObjectVersionAcl": frozenset({"WRITE_ACP"}),
}
