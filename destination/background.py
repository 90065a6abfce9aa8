"""A side task that lives exactly as long as a block (progress lines, pruning, token rechecks, the lag gauge)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager, suppress
from typing import Any


@asynccontextmanager
async def in_background(work: Coroutine[Any, Any, None], *, name: str | None = None,
                        on_done: Callable[[asyncio.Task[None]], None] | None = None) -> AsyncIterator[None]:
    """Run `work` as a task while the block runs; cancelled and awaited when the block ends."""
    task = asyncio.create_task(work, name=name)
    if on_done is not None:
        task.add_done_callback(on_done)
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
