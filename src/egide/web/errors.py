"""The error type of the layers below the front doors (web, auth): a code, a status, a message.

The layers shared by every mounted app cannot speak one app's dialect (S3's XML, the admin
API's JSON): they raise an `HttpError` carrying the AWS error code, and each front door maps it
in its one error module (egide.s3.translate, egide.admin.errors).
"""

from __future__ import annotations

from typing import ClassVar


class HttpError(Exception):
    """A client error with the AWS code and HTTP status it is answered with."""

    code: ClassVar[str] = "InternalError"
    status: ClassVar[int] = 500
    default_message: ClassVar[str] = "We encountered an internal error. Please try again."

    def __init__(self, message: str | None = None, **fields: str) -> None:
        self.message = message or self.default_message
        #: Extra fields of the answer, e.g. StringToSign, AWSAccessKeyId.
        self.fields = fields
        super().__init__(f"{self.code}: {self.message}")


def http_error(code: str, status: int, message: str) -> type[HttpError]:
    """One subclass per code, so that callers and tests can name what they raise or expect."""
    return type(code, (HttpError,), {"code": code, "status": status, "default_message": message})


IncompleteBody = http_error(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)

# What a connection is refused with before any app has its request (egide.web.connection).
BadRequest = http_error("BadRequest", 400, "Bad Request")
NotImplementedOperation = http_error(
    "NotImplemented",
    501,
    "A header or query you provided implies functionality that is not implemented.",
)
RequestHeaderSectionTooLarge = http_error(
    "RequestHeaderSectionTooLarge",
    400,
    "Your request header section exceeds the maximum allowed size.",
)
RequestTimeout = http_error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout "
    "period.",
)
SlowDown = http_error("SlowDown", 503, "Please reduce your request rate.")
