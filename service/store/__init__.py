"""The store: what the gateway keeps beyond one request (files, then batches, budgets, stored
responses), in SQLite under `data_dir` by default or in PostgreSQL (`database_url`) for several
replicas. Below the services, above the engine: it imports no HTTP, route or service code.

    database.py    the async engine and sessions; a database that cannot be used -> 503
    tables.py      the tables (and the ownership rule: every row has an owner)
    migrate.py     Alembic at start-up, once across replicas; migrations/ (package data)
    blobs.py       file contents: the data directory (SQLite) or chunk rows (PostgreSQL)
    paging.py      `after` / `limit` / `order` lists
    files.py       the files repository
    tenant_tables.py, api_keys.py, usage.py   the tenants' tables, runtime keys, usage + ledger
    batch_records.py  what the batches repositories take and give
    batches.py     the batches repository (OpenAI's batch object; a batch's last step)
    batch_lines.py a batch's lines: claimed under leases, one result each
    store.py       `Store`: all of it as the app holds it
"""

from service.store.files import FileContent, FileRecord, Files
from service.store.paging import Order, Page
from service.store.store import Store
from service.store.tables import ANONYMOUS_OWNER

__all__ = ["ANONYMOUS_OWNER", "FileContent", "FileRecord", "Files", "Order", "Page", "Store"]
