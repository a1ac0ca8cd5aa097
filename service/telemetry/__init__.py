"""Request context, metrics, logs and tracing: what the gateway says about its requests."""
