"""The store's migrations, oldest first (`v0001_...`); each names its parent in `down_revision`."""
