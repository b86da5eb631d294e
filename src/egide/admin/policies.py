"""Which policy a bucket follows and where it comes from; reading, proving and storing a new one.

The order is the gateway's own (egide.engine.placing.Placer.policy): the catalog's bucket
setting, the configuration's entry naming the bucket, the configuration's default, the global
code over every site. Kept in step with it here, with the source said, because "why does this
bucket go there" is the first question an administrator asks.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from egide.domain import Bucket
from egide.engine.bucketsettings import BucketSettings
from egide.engine.placing import dump_policy, load_policy
from egide.placement import Explanation, Infeasible, Policy, SiteProfile, solve
from egide.placement.settings import BucketPolicies

#: A policy document is a few hundred bytes; anything this large is a mistake.
MAX_POLICY_BYTES = 64 * 1024


class PolicySource(StrEnum):
    CATALOG = "catalog"
    CONFIGURATION = "configuration"
    DEFAULT = "configuration default"
    CODE = "code"


_SOURCES = {
    PolicySource.CATALOG: "the policy stored for the bucket in the catalog (egide policy set, "
    "or the admin API); it wins over the configuration",
    PolicySource.CONFIGURATION: "the configuration's [[policies]] entry naming the bucket",
    PolicySource.DEFAULT: "the configuration's default policy (the [[policies]] entry without "
    "`buckets`)",
    PolicySource.CODE: "no policy: the global code over every site",
}


class PolicyError(Exception):
    """A policy refused: the message names the constraint (or the solver's reason)."""


class InfeasiblePolicy(PolicyError):
    """A valid policy that no placement over the configured sites can meet."""


@dataclass(frozen=True)
class EffectivePolicy:
    """The policy new versions of a bucket are placed by, and where it comes from."""

    source: PolicySource
    policy: Policy | None
    #: Why the policy stored in the catalog is unusable (then `policy` is None and the
    #: gateway refuses the bucket's writes until it is set again).
    error: str | None = None

    @property
    def origin(self) -> str:
        return _SOURCES[self.source]

    def as_dict(self) -> dict[str, object]:
        return {
            "source": self.source.value,
            "origin": self.origin,
            "policy": document(self.policy) if self.policy is not None else None,
            "description": self.policy.describe().splitlines() if self.policy else [],
            "error": self.error,
        }


def document(policy: Policy) -> dict[str, object]:
    """A policy as JSON, as the catalog stores it (only what differs from the defaults)."""
    loaded: dict[str, object] = json.loads(dump_policy(policy))
    return loaded


async def effective_policy(
    settings: BucketSettings | None,
    policies: BucketPolicies,
    fallback: Policy,
    name: str,
    bucket: Bucket | None,
) -> EffectivePolicy:
    """The policy of bucket `name` (`bucket` None: not created yet, so nothing in the catalog)."""
    if bucket is not None and settings is not None:
        text = await settings.policy_text(bucket)
        if text:
            try:
                return EffectivePolicy(PolicySource.CATALOG, load_policy(text))
            except ValidationError as exc:
                error = f"the policy stored in the catalog is invalid: {messages(exc)}"
                return EffectivePolicy(PolicySource.CATALOG, None, error)
    if name in policies.buckets:
        return EffectivePolicy(PolicySource.CONFIGURATION, policies.buckets[name])
    if policies.default is not None:
        return EffectivePolicy(PolicySource.DEFAULT, policies.default)
    return EffectivePolicy(PolicySource.CODE, fallback)


def messages(exc: ValidationError) -> str:
    """pydantic's errors as `field: message`, the way the configuration reports them."""
    return "; ".join(
        (".".join(map(str, err["loc"])) + ": " if err["loc"] else "")
        + err["msg"].removeprefix("Value error, ")
        for err in exc.errors()
    )


def parse_policy(text: str) -> Policy:
    """A policy written as JSON (`{...}`, as the admin API takes it) or as TOML (the fields of a
    `[[policies]]` entry, without `buckets`). PolicyError names what is wrong."""
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise PolicyError(f"a policy document is at most {MAX_POLICY_BYTES} bytes")
    if text.lstrip().startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise PolicyError(f"not valid JSON: {exc}") from None
    else:
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"not valid TOML: {exc}") from None
    if not isinstance(data, dict):
        raise PolicyError("a policy is a table of fields (k, m, providers …)")
    if "buckets" in data:
        raise PolicyError("buckets: a stored policy governs the bucket it is set on; remove it")
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(messages(exc)) from None


def prove_feasible(policy: Policy, profiles: Sequence[SiteProfile]) -> None:
    """Refuse a policy that no placement meets even with every site up (the solver's reason)."""
    try:
        solve(policy, profiles)
    except Infeasible as exc:
        raise InfeasiblePolicy(f"no placement even with every site up: {exc}") from None


async def set_policy(
    settings: BucketSettings,
    bucket: Bucket,
    policy: Policy | None,
    profiles: Sequence[SiteProfile],
) -> None:
    """Store (or with None, remove) the policy of `bucket` once it is proven feasible (an
    engine change: the catalog setting, its event, the settings record next round)."""
    if policy is not None:
        prove_feasible(policy, profiles)
    await settings.set_policy(bucket, policy)


def explanation_dict(explanation: Explanation) -> dict[str, object]:
    """`egide policy explain` as JSON: the solver's placement, and each site's verdict."""
    placement = explanation.placement
    k = placement.k if placement is not None else explanation.policy.k
    return {
        "placement": None
        if placement is None
        else {
            "sites": list(placement.sites),
            "k": placement.k,
            "m": placement.m,
            "value": placement.value,
        },
        "infeasible": explanation.infeasible,
        "sites": [
            {
                "name": verdict.name,
                "allowed": verdict.allowed,
                "refusals": list(verdict.refusals),
                "down": verdict.down,
                "shard": verdict.shard,
                "role": _role(verdict.shard, k),
                "value": verdict.value,
                "if_down": verdict.if_down,
            }
            for verdict in explanation.sites
        ],
    }


def _role(shard: int | None, k: int) -> str | None:
    """Data shards (the first k) are what a healthy read fetches; parity is read on loss."""
    if shard is None:
        return None
    return "data" if shard < k else "parity"
