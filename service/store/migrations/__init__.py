"""Alembic's environment (`env.py`) and the store's migrations (`versions/`), package data so
that an installed gateway migrates itself at start-up (`service/store/migrate.py`)."""
