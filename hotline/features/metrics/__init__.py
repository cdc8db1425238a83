"""Prometheus metrics: one registry per Hotline instance, latency histograms fed by hooks (service.py)."""

from hotline.features.metrics.service import Metrics, ami_lag

__all__ = ["Metrics", "ami_lag"]
