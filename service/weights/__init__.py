"""Model weights: where the engine loads them from (the offline copy of the default model, or
whatever the `model` setting names), and their offline preparation."""

from service.weights.resolve import prepared_path, resolve_model

__all__ = ["prepared_path", "resolve_model"]
