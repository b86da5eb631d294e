"""MalformedPolicy: a policy document refused, with the reason AWS would give."""

from __future__ import annotations

from egide.web.errors import HttpError


class MalformedPolicy(HttpError):
    """PutBucketPolicy answers it as is (400 MalformedPolicy); IAM calls name it
    MalformedPolicyDocument. `reason` is the message, e.g. "Policy has invalid action"."""

    code = "MalformedPolicy"
    status = 400
    default_message = "This policy contains invalid Json"

    @property
    def reason(self) -> str:
        return self.message
