"""Prometheus metrics (placeholder until built)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from hotline.web.context import WebServices


def metrics_routes(services: WebServices) -> list[BaseRoute]:
    return []
