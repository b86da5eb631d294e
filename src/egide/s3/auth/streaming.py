"""Request bodies after authentication: aws-chunked decoding and signed-payload checks.

aws-chunked framing and chunk signatures:
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming.html
trailers (x-amz-checksum-*, x-amz-trailer-signature):
https://docs.aws.amazon.com/AmazonS3/latest/API/sigv4-streaming-trailers.html
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterable, AsyncIterator
from enum import Enum, auto

from egide.auth.sigv4 import EMPTY_SHA256, AuthResult, PayloadMode, same_signature, sign
from egide.s3.errors import (
    IncompleteBody,
    InvalidChunkSizeError,
    InvalidRequest,
    MalformedTrailerError,
    S3Error,
    SignatureDoesNotMatch,
)

#: S3 refuses a chunk smaller than this unless it is the last one carrying data.
MIN_CHUNK_SIZE = 8192
#: A signed chunk is held until its signature is checked, so its size bounds our memory.
MAX_SIGNED_CHUNK_SIZE = 16 * 1024 * 1024
_MAX_LINE = 4096
_MAX_TRAILER_LINES = 16
_COALESCE = 16 * 1024
_SIZE = re.compile(rb"[0-9a-fA-F]{1,16}")
_SIGNATURE = re.compile(rb"[0-9a-f]{64}")
_TRAILER_SIGNATURE = "x-amz-trailer-signature"


class _State(Enum):
    HEADER = auto()  # expecting "<hex size>[;chunk-signature=<sig>]\r\n"
    DATA = auto()  # inside the data of a chunk
    DATA_END = auto()  # expecting the "\r\n" that closes a chunk's data
    TRAILER = auto()  # after the 0-size chunk: "name:value\r\n" lines, then "\r\n"
    DONE = auto()


class ChunkedBodyDecoder:
    """Decode an aws-chunked body, verifying chunk and trailer signatures as it streams.

    Unsigned chunks are passed on as views of the input pieces as soon as they arrive; a
    signed chunk is held (as views, never copied) until its signature is checked, so no
    unverified byte is ever handed on. Trailer values land in `trailers` at the end: the
    caller compares the checksum it computed over the output with `checksums.verify`.
    """

    def __init__(
        self,
        auth: AuthResult,
        checksum_trailer: str | None,
        *,
        decoded_length: int | None = None,
        max_chunk_size: int = MAX_SIGNED_CHUNK_SIZE,
    ) -> None:
        if not auth.payload_mode.streaming:
            raise ValueError(f"{auth.payload_mode} bodies are not aws-chunked")
        self.auth = auth
        self.decoded_length = decoded_length
        self.max_chunk_size = max_chunk_size
        self.trailers: dict[str, str] = {}
        self._signed = auth.payload_mode in (
            PayloadMode.STREAMING_SIGNED,
            PayloadMode.STREAMING_SIGNED_TRAILER,
        )
        self._expected_trailers: set[str] = set()
        if auth.payload_mode is not PayloadMode.STREAMING_SIGNED and checksum_trailer:
            # The raw x-amz-trailer value will do: a comma-separated list of names.
            names = (name.strip().lower() for name in checksum_trailer.split(","))
            self._expected_trailers.update(filter(None, names))
        self._state = _State.HEADER
        self._line = bytearray()
        self._remaining = 0  # bytes of data left in the current chunk
        self._total = 0  # payload bytes seen so far
        self._last_size: int | None = None
        self._chunks = 0
        self._previous_signature = auth.seed_signature
        self._chunk_signature = ""
        self._hash = hashlib.sha256()  # of the current signed chunk
        self._held: list[memoryview | bytearray] = []
        self._trailer_lines: list[tuple[str, str]] = []
        self._awaits_trailers = bool(self._expected_trailers) or (
            auth.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER
        )
        self._skipped_blank = False

    async def decode(self, source: AsyncIterable[bytes]) -> AsyncIterator[memoryview]:
        """Yield the payload of `source`, which may be cut anywhere; raise on any fault."""
        async for piece in source:
            for part in self.feed(piece):
                yield part
        self.finish()

    def feed(self, piece: bytes) -> list[memoryview]:
        """Consume one piece of the encoded body; return the payload it completes."""
        if not isinstance(piece, bytes):
            piece = bytes(piece)  # our output keeps views on it: it must not change
        view = memoryview(piece)
        out: list[memoryview] = []
        pos, end = 0, len(piece)
        while pos < end:
            if self._state is _State.DATA:
                take = min(self._remaining, end - pos)
                part = view[pos : pos + take]
                pos += take
                self._remaining -= take
                if self._signed:
                    self._hash.update(part)
                    self._hold(part)
                    if not self._remaining:
                        self._verify_chunk(self._hash.hexdigest())
                        out.extend(memoryview(p) for p in self._held)
                        self._held = []
                else:
                    out.append(part)
                if not self._remaining:
                    self._state = _State.DATA_END
            elif self._state is _State.DONE:
                raise IncompleteBody("Unexpected data after the end of the aws-chunked body.")
            else:
                line, pos = self._read_line(piece, pos)
                if line is not None:
                    self._on_line(line)
        return out

    def _hold(self, part: memoryview) -> None:
        # Small fragments are copied together, so that a body trickled in tiny pieces cannot
        # turn one held chunk into a huge number of views.
        if len(part) >= _COALESCE:
            self._held.append(part)
        elif self._held and isinstance(self._held[-1], bytearray):
            self._held[-1] += part
        else:
            self._held.append(bytearray(part))

    def finish(self) -> None:
        """Check that the body ended where it should; call once the input is exhausted."""
        if self._state is _State.TRAILER and not self._line:
            self._end_trailers()  # tolerate a missing final CRLF, as S3 does
        if self._state is not _State.DONE:
            raise IncompleteBody("The aws-chunked body ended before its final chunk.")
        if self.decoded_length is not None and self._total != self.decoded_length:
            raise IncompleteBody(
                f"You did not provide the number of bytes specified by the "
                f"x-amz-decoded-content-length header ({self._total} of {self.decoded_length})."
            )

    def _read_line(self, piece: bytes, pos: int) -> tuple[bytes | None, int]:
        line = self._line
        if line and line[-1] == 13 and piece[pos] == 10:  # "\r" | "\n" across two pieces
            text = bytes(line[:-1])
            line.clear()
            return text, pos + 1
        index = piece.find(b"\r\n", pos)
        if index < 0:
            line += piece[pos:]
            if len(line) > _MAX_LINE:
                raise IncompleteBody("Malformed aws-chunked body: line too long.")
            return None, len(piece)
        if line:
            text = bytes(line) + piece[pos:index]
            line.clear()
        else:
            text = piece[pos:index]
        if len(text) > _MAX_LINE:
            raise IncompleteBody("Malformed aws-chunked body: line too long.")
        return text, index + 2

    def _on_line(self, line: bytes) -> None:
        if self._state is _State.HEADER:
            self._on_chunk_header(line)
        elif self._state is _State.DATA_END:
            if line:
                raise IncompleteBody("Malformed aws-chunked body: chunk longer than declared.")
            self._state = _State.HEADER
        elif not line:  # _State.TRAILER
            if self._awaits_trailers and not self._trailer_lines and not self._skipped_blank:
                # The AWS doc example has a blank line between the 0-size chunk and the
                # trailers; accept it once, where trailers are still to come.
                self._skipped_blank = True
            else:
                self._end_trailers()
        else:
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or len(self._trailer_lines) >= _MAX_TRAILER_LINES:
                raise MalformedTrailerError()
            self._trailer_lines.append((name.strip().lower(), value.strip()))

    def _on_chunk_header(self, line: bytes) -> None:
        size_text, _, extension = line.partition(b";")
        if not _SIZE.fullmatch(size_text):
            raise IncompleteBody("Malformed aws-chunked body: invalid chunk size.")
        size = int(size_text, 16)
        if self._signed:
            if not extension:
                raise IncompleteBody("Malformed aws-chunked body: missing chunk-signature.")
            key, _, signature = extension.partition(b"=")
            if key.strip() != b"chunk-signature" or not _SIGNATURE.fullmatch(signature.strip()):
                raise self._mismatch("", signature.decode("latin-1"))
            self._chunk_signature = signature.strip().decode("ascii")
            if size > self.max_chunk_size:
                raise InvalidRequest(
                    f"Chunks of a signed aws-chunked body may not exceed {self.max_chunk_size} "
                    f"bytes."
                )
        self._chunks += 1
        if self._last_size is not None and self._last_size < MIN_CHUNK_SIZE and size:
            # Even for unsigned chunks: https://github.com/aws/aws-sdk-js-v3/pull/7598
            raise InvalidChunkSizeError(Chunk=str(self._chunks), BadChunkSize=str(self._last_size))
        self._last_size = size
        self._total += size
        if self.decoded_length is not None and self._total > self.decoded_length:
            raise IncompleteBody(
                "The aws-chunked body is longer than its x-amz-decoded-content-length."
            )
        if size:
            self._remaining = size
            self._state = _State.DATA
            if self._signed:
                self._hash = hashlib.sha256()
            return
        if self._signed:
            self._verify_chunk(EMPTY_SHA256)
        self._state = _State.TRAILER

    def _verify_chunk(self, data_sha256: str) -> None:
        auth = self.auth
        string_to_sign = (
            f"AWS4-HMAC-SHA256-PAYLOAD\n{auth.amz_date}\n{auth.scope}\n"
            f"{self._previous_signature}\n{EMPTY_SHA256}\n{data_sha256}"
        )
        expected = sign(auth.signing_key, string_to_sign)
        if not same_signature(expected, self._chunk_signature):
            raise self._mismatch(string_to_sign, self._chunk_signature)
        self._previous_signature = expected

    def _end_trailers(self) -> None:
        if self._awaits_trailers and not self._trailer_lines:
            raise IncompleteBody("The aws-chunked body ended without its trailers.")
        signature = None
        for name, value in self._trailer_lines:
            if name == _TRAILER_SIGNATURE and signature is None:
                signature = value
            elif name in self.trailers or name not in self._expected_trailers:
                raise MalformedTrailerError()
            else:
                self.trailers[name] = value
        if set(self.trailers) != self._expected_trailers:
            raise MalformedTrailerError()
        if self.auth.payload_mode is PayloadMode.STREAMING_SIGNED_TRAILER:
            if signature is None:
                raise IncompleteBody("The aws-chunked body ended without x-amz-trailer-signature.")
            # The trailer hash covers "name:value\n" for each trailer, sorted by name.
            canonical = "".join(f"{n}:{v}\n" for n, v in sorted(self.trailers.items())) or "\n"
            auth = self.auth
            string_to_sign = (
                f"AWS4-HMAC-SHA256-TRAILER\n{auth.amz_date}\n{auth.scope}\n"
                f"{self._previous_signature}\n"
                f"{hashlib.sha256(canonical.encode('latin-1')).hexdigest()}"
            )
            if not same_signature(sign(auth.signing_key, string_to_sign), signature):
                raise self._mismatch(string_to_sign, signature)
        elif signature is not None:
            raise MalformedTrailerError()
        self._state = _State.DONE

    def _mismatch(self, string_to_sign: str, provided: str) -> S3Error:
        return SignatureDoesNotMatch(
            AWSAccessKeyId=self.auth.access_key,
            StringToSign=string_to_sign,
            SignatureProvided=provided,
        )
