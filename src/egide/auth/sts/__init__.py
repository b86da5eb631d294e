"""Temporary credentials (STS): sealed session tokens, the STS API (AssumeRole,
AssumeRoleWithWebIdentity) and OpenID Connect ID token verification (docs/sts.md)."""
