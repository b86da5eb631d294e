"""AWS's policy language and its evaluation: conditions (`conditions`), wildcards and policy
variables (`patterns`). Pure: no I/O."""

from egide.auth.policy.conditions import OPERATORS
from egide.auth.policy.errors import MalformedPolicy
from egide.auth.policy.patterns import Values

__all__ = ["OPERATORS", "MalformedPolicy", "Values"]
