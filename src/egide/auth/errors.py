"""The errors of authentication and authorization, with AWS's codes, statuses and messages.

https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html. They are `HttpError`s:
each front door answers them in its own dialect (see egide.web.errors).
"""

from __future__ import annotations

from egide.web.errors import HttpError, http_error

AuthError = HttpError

AccessDenied = http_error("AccessDenied", 403, "Access Denied")
AuthorizationHeaderMalformed = http_error(
    "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."
)
AuthorizationQueryParametersError = http_error(
    "AuthorizationQueryParametersError", 400, "Error parsing the X-Amz-Credential parameter."
)
InvalidAccessKeyId = http_error(
    "InvalidAccessKeyId", 403, "The AWS Access Key Id you provided does not exist in our records."
)
InvalidArgument = http_error("InvalidArgument", 400, "Invalid Argument")
InvalidRequest = http_error("InvalidRequest", 400, "Invalid Request")
RequestTimeTooSkewed = http_error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
)
SignatureDoesNotMatch = http_error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)
XAmzContentSHA256Mismatch = http_error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
ExpiredToken = http_error("ExpiredToken", 400, "The provided token has expired.")
InvalidToken = http_error(
    "InvalidToken", 400, "The provided token is malformed or otherwise invalid."
)
