"""Where a model comes from: its offline copy (default model) or whatever the setting names."""

from service.models.resolve import prepared_path, resolve_model

__all__ = ["prepared_path", "resolve_model"]
