"""S3 errors: one class per AWS error code, each carrying its HTTP status.

Every failure that reaches a client goes through here, so the code, the status and the XML body
are decided in one place (the model is Swift's s3response.py). Codes and statuses follow
https://docs.aws.amazon.com/AmazonS3/latest/API/ErrorResponses.html
"""

from __future__ import annotations

from egide.web.errors import HttpError


class S3Error(HttpError):
    """An error the S3 API returns as `<Error><Code>…</Code><Message>…</Message>…</Error>`:
    the shared layers' `HttpError` (code, status, message, extra elements of the body), with
    the response headers some S3 errors carry."""

    def __init__(self, message: str | None = None, **fields: str) -> None:
        super().__init__(message, **fields)
        #: Extra response headers (x-amz-delete-marker, x-amz-version-id …).
        self.headers: dict[str, str] = {}


#: Every S3 error class by its code (the shared layers' errors are mapped through it).
BY_CODE: dict[str, type[S3Error]] = {}


def _error(code: str, status: int, message: str) -> type[S3Error]:
    cls = type(code, (S3Error,), {"code": code, "status": status, "default_message": message})
    BY_CODE[code] = cls
    return cls


# Listed here, not generated from a table at import time, so that linters and readers see names.
AccessDenied = _error("AccessDenied", 403, "Access Denied")
#: A CORS preflight the bucket's rules refuse (the code S3 answers, not in its error table).
AccessForbidden = _error("AccessForbidden", 403, "CORSResponse: This CORS request is not allowed.")
AuthorizationHeaderMalformed = _error(
    "AuthorizationHeaderMalformed", 400, "The authorization header is malformed."
)
BadRequest = _error("BadRequest", 400, "Bad Request")
BadDigest = _error(
    "BadDigest", 400, "The Content-MD5 you specified did not match what we received."
)
BucketAlreadyExists = _error(
    "BucketAlreadyExists", 409, "The requested bucket name is not available."
)
BucketAlreadyOwnedByYou = _error(
    "BucketAlreadyOwnedByYou",
    409,
    "Your previous request to create the named bucket succeeded and you already own it.",
)
BucketNotEmpty = _error("BucketNotEmpty", 409, "The bucket you tried to delete is not empty.")
EntityTooLarge = _error(
    "EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size."
)
EntityTooSmall = _error(
    "EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size."
)
IncompleteBody = _error(
    "IncompleteBody",
    400,
    "You did not provide the number of bytes specified by the Content-Length HTTP header.",
)
InternalError = S3Error
InvalidAccessKeyId = _error(
    "InvalidAccessKeyId",
    403,
    "The AWS Access Key Id you provided does not exist in our records.",
)
InvalidArgument = _error("InvalidArgument", 400, "Invalid Argument")
InvalidRetentionPeriod = _error(
    "InvalidRetentionPeriod", 400, "The retention period must be a positive integer."
)
ObjectLockConfigurationNotFoundError = _error(
    "ObjectLockConfigurationNotFoundError",
    404,
    "Object Lock configuration does not exist for this bucket",
)
NoSuchObjectLockConfiguration = _error(
    "NoSuchObjectLockConfiguration",
    404,
    "The specified object does not have a ObjectLock configuration",
)
InvalidBucketState = _error(
    "InvalidBucketState", 409, "The request is not valid with the current state of the bucket."
)
InvalidBucketName = _error("InvalidBucketName", 400, "The specified bucket is not valid.")
InvalidDigest = _error("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
InvalidPart = _error(
    "InvalidPart",
    400,
    "One or more of the specified parts could not be found. The part might not have been "
    "uploaded, or the specified entity tag might not have matched the part's entity tag.",
)
InvalidPartNumber = _error("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")
InvalidPartOrder = _error(
    "InvalidPartOrder",
    400,
    "The list of parts was not in ascending order. Parts must be ordered by part number.",
)
InvalidPolicyDocument = _error(
    "InvalidPolicyDocument",
    400,
    "The content of the form does not meet the conditions specified in the policy document.",
)
InvalidRange = _error("InvalidRange", 416, "The requested range is not satisfiable")
InvalidRequest = _error("InvalidRequest", 400, "Invalid Request")
InvalidTag = _error("InvalidTag", 400, "The tag provided was not a valid tag.")
InvalidURI = _error("InvalidURI", 400, "Couldn't parse the specified URI.")
#: An SSE-KMS key id that names no key Égide has (the code AWS answers, from KMS).
KMSNotFound = _error("KMS.NotFoundException", 400, "Invalid keyId")
KeyTooLongError = _error("KeyTooLongError", 400, "Your key is too long")
MalformedPOSTRequest = _error(
    "MalformedPOSTRequest",
    400,
    "The body of your POST request is not well-formed multipart/form-data.",
)
MalformedXML = _error(
    "MalformedXML",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema",
)
MaxPostPreDataLengthExceededError = _error(
    "MaxPostPreDataLengthExceededError",
    400,
    "Your POST request fields preceding the upload file were too large.",
)
MetadataTooLarge = _error(
    "MetadataTooLarge",
    400,
    "Your metadata headers exceed the maximum allowed metadata size.",
)
MethodNotAllowed = _error(
    "MethodNotAllowed", 405, "The specified method is not allowed against this resource."
)
MissingContentLength = _error(
    "MissingContentLength", 411, "You must provide the Content-Length HTTP header."
)
MissingSecurityHeader = _error(
    "MissingSecurityHeader", 400, "Your request is missing a required header."
)
NoSuchBucket = _error("NoSuchBucket", 404, "The specified bucket does not exist")
NoSuchCORSConfiguration = _error(
    "NoSuchCORSConfiguration", 404, "The CORS configuration does not exist"
)
NoSuchKey = _error("NoSuchKey", 404, "The specified key does not exist.")
NoSuchLifecycleConfiguration = _error(
    "NoSuchLifecycleConfiguration", 404, "The lifecycle configuration does not exist"
)
NoSuchBucketPolicy = _error("NoSuchBucketPolicy", 404, "The bucket policy does not exist")
MalformedPolicy = _error("MalformedPolicy", 400, "Policies must be valid JSON")
NoSuchTagSet = _error("NoSuchTagSet", 404, "The TagSet does not exist")
NoSuchUpload = _error(
    "NoSuchUpload",
    404,
    "The specified multipart upload does not exist. The upload ID might not be valid, or the "
    "multipart upload might have been aborted or completed.",
)
NoSuchVersion = _error(
    "NoSuchVersion",
    404,
    "The version ID specified in the request does not match an existing version.",
)
NotImplementedOperation = _error(
    "NotImplemented",
    501,
    "A header or query you provided implies functionality that is not implemented.",
)
PreconditionFailed = _error(
    "PreconditionFailed", 412, "At least one of the preconditions you specified did not hold."
)
QuotaExceeded = _error("QuotaExceeded", 403, "The write would exceed a quota.")
RequestTimeTooSkewed = _error(
    "RequestTimeTooSkewed",
    403,
    "The difference between the request time and the current time is too large.",
)
ServerSideEncryptionConfigurationNotFoundError = _error(
    "ServerSideEncryptionConfigurationNotFoundError",
    404,
    "The server side encryption configuration was not found",
)
ServiceUnavailable = _error("ServiceUnavailable", 503, "Please reduce your request rate.")
SlowDown = _error("SlowDown", 503, "Please reduce your request rate.")
RequestTimeout = _error(
    "RequestTimeout",
    400,
    "Your socket connection to the server was not read from or written to within the timeout "
    "period.",
)
RequestHeaderSectionTooLarge = _error(
    "RequestHeaderSectionTooLarge",
    400,
    "Your request header section exceeds the maximum allowed size.",
)
SignatureDoesNotMatch = _error(
    "SignatureDoesNotMatch",
    403,
    "The request signature we calculated does not match the signature you provided. "
    "Check your key and signing method.",
)
XAmzContentSHA256Mismatch = _error(
    "XAmzContentSHA256Mismatch",
    400,
    "The provided 'x-amz-content-sha256' header does not match what was computed.",
)
InvalidChunkSizeError = _error(
    "InvalidChunkSizeError",
    403,
    "Only the last chunk is allowed to have a size less than 8192 bytes",
)
AuthorizationQueryParametersError = _error(
    "AuthorizationQueryParametersError",
    400,
    "Error parsing the X-Amz-Credential parameter.",
)
MalformedTrailerError = _error(
    "MalformedTrailerError",
    400,
    "The request contained trailing data that was not well-formed or did not conform to our "
    "published schema.",
)

# -- ACLs, Object Ownership, Public Access Block (s3/acl.py, s3/access.py, s3/ownership.py) --
MalformedACLError = _error(
    "MalformedACLError",
    400,
    "The XML you provided was not well-formed or did not validate against our published schema.",
)
UnresolvableGrantByEmailAddress = _error(
    "UnresolvableGrantByEmailAddress",
    400,
    "The e-mail address you provided does not match any account on record.",
)
AccessControlListNotSupported = _error(
    "AccessControlListNotSupported", 400, "The bucket does not allow ACLs"
)
InvalidBucketAclWithObjectOwnership = _error(
    "InvalidBucketAclWithObjectOwnership",
    400,
    "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting",
)
OwnershipControlsNotFoundError = _error(
    "OwnershipControlsNotFoundError",
    404,
    "The bucket ownership controls were not found",
)
NoSuchPublicAccessBlockConfiguration = _error(
    "NoSuchPublicAccessBlockConfiguration",
    404,
    "The public access block configuration was not found",
)
