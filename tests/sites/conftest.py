"""Provider fixtures for the site tests (defined in tests/providers.py, shared with e2e tests)."""

from tests.providers import moto_server, provider, seaweedfs

__all__ = ["moto_server", "provider", "seaweedfs"]
