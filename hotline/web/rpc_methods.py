"""The XML-RPC function catalogue (placeholder until built)."""

from __future__ import annotations

from starlette.routing import BaseRoute

from hotline.web.context import WebServices


def rpc_routes(services: WebServices) -> list[BaseRoute]:
    return []
