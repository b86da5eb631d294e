"""Thread pool for the CPU-bound work of the data path (AES-GCM, zfec, MD5, checksums).

These libraries release the GIL, so one thread per core runs them truly in parallel while the
event loop keeps parsing HTTP.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")

CPU_POOL = ThreadPoolExecutor(
    max_workers=max(2, os.cpu_count() or 2), thread_name_prefix="egide-cpu"
)


def on_cpu(fn: Callable[..., T], *args: object) -> asyncio.Future[T]:
    return asyncio.get_running_loop().run_in_executor(CPU_POOL, fn, *args)
