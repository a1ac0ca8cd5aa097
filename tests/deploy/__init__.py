"""Deployment checks: Dockerfile, compose, Prometheus/Grafana config and Kubernetes manifests."""
