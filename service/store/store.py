"""`Store`: the store as the app holds it: its database, its blob store and the repositories
on them (files, batches and their lines, stored responses and conversations, runtime keys and
usage). Built without I/O in `create_app`, opened (migrated) in the lifespan before the gateway
is ready, closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import exc

from service.config import Settings
from service.errors import StoreUnavailableError
from service.store.api_keys import RuntimeKeys
from service.store.batch_lines import BatchLines
from service.store.batches import Batches
from service.store.blobs import BlobStore, DatabaseBlobs, DirectoryBlobs
from service.store.conversations import Conversations
from service.store.database import Database, is_unavailable
from service.store.files import Files
from service.store.migrate import upgrade
from service.store.operations import finish_pending
from service.store.responses import Responses
from service.store.usage import UsageStore

logger = logging.getLogger(__name__)

FILES_DIR = "files"  # beside the SQLite database: file contents


class Store:
    def __init__(self, database: Database, blobs: BlobStore, settings: Settings) -> None:
        self.database = database
        self.blobs = blobs
        self.files = Files(database, blobs)
        self.batches = Batches(database, self.files)
        self.batch_lines = BatchLines(database)
        self.responses = Responses(
            database,
            entries=settings.response_store_entries,
            ttl_seconds=settings.response_store_ttl_seconds,
        )
        self.conversations = Conversations(
            database,
            entries=settings.conversation_store_entries,
            ttl_seconds=settings.conversation_ttl_seconds,
        )
        self.runtime_keys = RuntimeKeys(database)  # tenants: keys made at runtime
        self.usage = UsageStore(database)  # tenants: usage by minute, the budgets' ledger

    @classmethod
    def from_settings(cls, settings: Settings) -> Store:
        """SQLite and file contents under `data_dir`, or everything in `database_url`."""
        database = Database.from_settings(settings)
        if database.sqlite_file is None:
            return cls(database, DatabaseBlobs(database), settings)
        return cls(database, DirectoryBlobs(settings.data_dir / FILES_DIR), settings)

    @property
    def where(self) -> str:
        """The store as an operator would name it (no password)."""
        if self.database.sqlite_file is not None:
            return f"SQLite at {self.database.sqlite_file}"
        return f"PostgreSQL at {self.database.url.render_as_string(hide_password=True)}"

    async def open(self) -> None:
        """Migrate the schema to this version's; the store cannot be used before. A store that
        cannot be opened (down, or misnamed: no such database or user) raises
        `StoreUnavailableError` naming it and why."""
        try:
            if isinstance(self.blobs, DirectoryBlobs):
                self.blobs.root.mkdir(parents=True, exist_ok=True)
            await upgrade(self.database)
        except Exception as err:
            if not (is_unavailable(err) or isinstance(err, exc.DBAPIError)):
                raise
            # The driver's own words: "database "x" does not exist", "Connect call failed".
            reason = str(err.orig) if isinstance(err, exc.DBAPIError) else repr(err)
            raise StoreUnavailableError(
                f"The store ({self.where}) cannot be opened: {reason}"
            ) from err
        logger.info("store ready: %s", self.where)

    async def close(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.database.timeout):
                await finish_pending()
        await self.database.dispose()
