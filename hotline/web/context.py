"""What the web layer (REST, XML-RPC, WebSocket, pages, metrics) gets from the wiring in hotline/app.py.

One frozen bag of collaborators, built once by `Hotline` and passed to every web module's builder;
web modules never import `hotline.app` (no cycle, and a test can build the web layer around its own
services).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hotline.asterisk.agi_server import AGIServer
    from hotline.asterisk.realtime_backend import RealtimeBackend
    from hotline.db.repositories import CallRepository
    from hotline.db.repositories.agents import AgentStateRepository
    from hotline.db.repositories.crm import CustomerRepository
    from hotline.db.repositories.history import HistoryRepository
    from hotline.features.accounts import AccountService
    from hotline.features.agents.service import AgentService
    from hotline.features.calls import CallControlService
    from hotline.features.cluster.service import NodeService
    from hotline.features.config.resources import ResourceCatalog
    from hotline.features.config.service import ConfigService
    from hotline.features.crm import CallerLookupService
    from hotline.features.events import EventBus
    from hotline.features.journal.service import JournalService
    from hotline.features.media import MediaService
    from hotline.features.metrics import Metrics
    from hotline.features.monitor import MonitorService
    from hotline.features.recordings import RecordingService
    from hotline.features.webhooks import WebhookService
    from hotline.settings import Settings
    from hotline.web.auth import Authenticator


@dataclass(frozen=True)
class WebServices:
    settings: Settings
    auth: Authenticator
    accounts: AccountService
    catalog: ResourceCatalog
    config: ConfigService
    agents: AgentService
    agent_repo: AgentStateRepository
    calls: CallControlService
    call_repo: CallRepository
    history: HistoryRepository
    journal: JournalService
    bus: EventBus
    nodes: NodeService
    monitor: MonitorService
    recordings: RecordingService
    media: MediaService
    webhooks: WebhookService
    customers: CustomerRepository
    caller_lookup: CallerLookupService
    realtime: RealtimeBackend
    agi: AGIServer
    metrics: Metrics | None = None  # None: a web layer built without one (scrape-time metrics only)
