"""The people-facing pages: wallboard, live monitor, agent page.

Each renders a frame plus the few facts its script needs to start (which agent, whether the viewer may act);
the scripts load state from the REST API and then follow the event stream.
"""

from __future__ import annotations

import re

from starlette.requests import Request
from starlette.responses import Response

from hotline.errors import NotFoundError, PermissionDeniedError, ValidationError
from hotline.web.auth import Caller
from hotline.web.pages.framework import Pages

_AGENT_NUMBER = re.compile(r"[0-9]{1,32}")


def register(pages: Pages) -> None:
    @pages.page("/wallboard", scopes=("stats:read",))
    async def wallboard(request: Request, caller: Caller) -> Response:
        return await pages.render(request, caller, "wallboard.html")

    @pages.page("/monitor", scopes=("stats:read",))
    async def monitor(request: Request, caller: Caller) -> Response:
        p = caller.principal
        return await pages.render(
            request,
            caller,
            "monitor.html",
            data={
                "may": {
                    "spy": p.has_scope("calls:spy"),
                    "hangup": p.has_scope("calls:control"),
                    "agents": p.has_scope("agents:control"),
                }
            },
        )

    @pages.page("/agent", scopes=("self", "agents:read"))
    async def agent(request: Request, caller: Caller) -> Response:
        p = caller.principal
        asked = request.query_params.get("agent")
        if asked is not None and not _AGENT_NUMBER.fullmatch(asked):
            raise ValidationError("agent", "must be an agent number (digits)")
        number = asked or p.agent_number
        if number is not None and not p.may_see_agent(number):
            raise PermissionDeniedError(f"{p.actor} may not see agent {number}")
        snapshot = pages.services.config.snapshot
        found = snapshot.agent_by_number.get(number) if number else None
        if number is not None and found is None:
            raise NotFoundError(f"agent {number!r} does not exist")
        own = number is not None and number == p.agent_number and p.has_scope("self")
        agents = (
            [
                {"number": a.number, "name": a.name}
                for a in sorted(snapshot.agent_by_number.values(), key=lambda a: a.number)
            ]
            if number is None
            else []
        )
        return await pages.render(
            request,
            caller,
            "agent.html",
            {"agent_number": number, "agent_name": found.name if found else "", "agents": agents, "own": own},
            data={"agentNumber": number, "agentName": found.name if found else "", "own": own},
        )
