"""A store operation whose caller is cancelled (a client gone, a background task stopped at
shutdown) runs to its end: on SQLite it never leaves its write lock behind for the next writer,
which would then wait out the busy timeout and fail with 503 `store_unavailable`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.config import Settings
from service.store import Store

CANCELS = 300
REPLICA = "replica-a"


async def test_a_write_cancelled_at_any_moment_leaves_the_store_writable(tmp_path: Path) -> None:
    store = Store.from_settings(Settings(data_dir=tmp_path, database_timeout_seconds=0.5))
    await store.open()
    try:
        await store.responses.start(
            "owner", {"id": "resp_1", "status": "queued"}, [], replica=REPLICA, stream=False
        )

        async def beating() -> None:  # as a replica's heartbeat does, until it is stopped
            while True:
                await store.responses.heartbeat(REPLICA, ["resp_1"], now=1.0)

        for turn in range(CANCELS):
            beats = asyncio.create_task(beating())
            # Cancelled a little later each time (0 to 10 ms), so that many cancels land while
            # a statement runs in the driver's thread, where the lock used to be left behind.
            await asyncio.sleep(turn % 50 * 0.0002)
            beats.cancel()
            await asyncio.gather(beats, return_exceptions=True)
            # The next write, within the busy timeout (a lock left behind: StoreUnavailableError).
            assert await store.responses.heartbeat(REPLICA, ["resp_1"], now=2.0) == {"resp_1"}
    finally:
        await store.close()
