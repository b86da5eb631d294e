"""GetObjectTorrent (`GET /bucket/key?torrent`): a BitTorrent metainfo file of the object.

As AWS made them until it discontinued the feature (2021; its trackers closed in 2022):
pieces of 256 KiB, the SHA-1 of each piece of the object's plaintext, `name` the key's last
segment, served as `application/x-bittorrent`. Égide runs no tracker, so the file has no
`announce` (BEP 3 names it; clients find peers for a trackerless file through the DHT, BEP 5):
it is first of all a list of verifiable piece hashes. The object is read through the ordinary
read path (decrypted, decoded) and hashed piece by piece: only the hashes are held, 20 bytes
per piece.

Refused as AWS refused: objects stored under a customer-provided key (SSE-C; AWS took no key
on this request, nor does Égide: the three SSE-C headers are refused rather than ignored),
and objects over 5 GiB.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable
from typing import TypeAlias
from urllib.parse import quote

from egide.domain import ObjectVersion
from egide.engine.customer_keys import under_customer_key
from egide.engine.store import ObjectStore
from egide.s3 import encryption, errors
from egide.s3.http import Request, Response

PIECE_LENGTH = 256 * 1024
MAX_TORRENT_OBJECT = 5 * 1024**3
CONTENT_TYPE = "application/x-bittorrent"
CREATED_BY = "Egide"

Bencodable: TypeAlias = int | bytes | str | list["Bencodable"] | dict[str, "Bencodable"]


def bencode(value: Bencodable) -> bytes:
    """BEP 3's encoding: dictionaries with their keys sorted as raw strings."""
    if isinstance(value, bool):
        raise TypeError("bencode has no booleans")
    if isinstance(value, int):
        return b"i%de" % value
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, bytes):
        return b"%d:%s" % (len(value), value)
    if isinstance(value, list):
        return b"l" + b"".join(bencode(item) for item in value) + b"e"
    items = sorted((k.encode(), v) for k, v in value.items())
    return b"d" + b"".join(bencode(k) + bencode(v) for k, v in items) + b"e"


async def piece_hashes(chunks: AsyncIterable[bytes], piece_length: int = PIECE_LENGTH) -> bytes:
    """The SHA-1 digests of each `piece_length` piece of the stream, the last one partial."""
    digests = bytearray()
    piece = hashlib.sha1(usedforsecurity=False)
    filled = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = min(piece_length - filled, len(view))
            piece.update(view[:take])
            filled += take
            view = view[take:]
            if filled == piece_length:
                digests += piece.digest()
                piece, filled = hashlib.sha1(usedforsecurity=False), 0
    if filled:
        digests += piece.digest()
    return bytes(digests)


def torrent_name(key: str) -> str:
    """The key's last path segment (the whole key if it has none)."""
    return key.rstrip("/").rsplit("/", 1)[-1] or key


def check_torrentable(version: ObjectVersion) -> None:
    """Refuse what AWS refused: an SSE-C object (its key is not taken) and one over 5 GB."""
    if under_customer_key(version.headers):
        raise errors.InvalidRequest(
            "GetObjectTorrent is not available for an object stored under a customer-provided "
            "key (SSE-C)."
        )
    if version.size > MAX_TORRENT_OBJECT:
        raise errors.InvalidRequest(
            f"GetObjectTorrent is available for objects of at most {MAX_TORRENT_OBJECT} bytes; "
            f"this one is {version.size} bytes."
        )


def _disposition(name: str) -> str:
    """RFC 6266: an ASCII filename for every client, the exact one in filename*."""
    plain = "".join(c if " " <= c < "\x7f" and c not in '"\\' else "_" for c in name)
    return f"attachment; filename=\"{plain}.torrent\"; filename*=UTF-8''{quote(name)}.torrent"


async def handle_get_object_torrent(req: Request, store: ObjectStore) -> Response:
    assert req.bucket is not None and req.key is not None
    encryption.refuse_write_encryption(req.head)
    sent = sorted(n for n in req.head.headers if n.startswith(f"{encryption.SSE}-customer-"))
    if sent:
        raise errors.InvalidRequest(
            f"GetObjectTorrent takes no customer-provided key ({', '.join(sent)}): the torrent "
            "of an object stored under one (SSE-C) is not available."
        )
    version = await store.head_object(req.bucket, req.key)
    check_torrentable(version)
    name = torrent_name(req.key)
    if version.size:
        reader = await store.reader(version, 0, version.size - 1)
        pieces = await piece_hashes(reader)
    else:
        pieces = b""
    metainfo: dict[str, Bencodable] = {
        "created by": CREATED_BY,
        "info": {
            "length": version.size,
            "name": name,
            "piece length": PIECE_LENGTH,
            "pieces": pieces,
        },
    }
    headers = {"content-type": CONTENT_TYPE, "content-disposition": _disposition(name)}
    return Response(200, headers, bencode(metainfo))
