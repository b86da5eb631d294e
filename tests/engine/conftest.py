"""Fixtures of the engine tests: a real store on a temporary directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.engine.helpers import Env, make_env


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return make_env(tmp_path)
