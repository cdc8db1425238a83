"""Every configuration resource as data, and the one code path that reads and writes them.

`ResourceCatalog(engine)` lists, gets, creates, updates, deletes and bulk-changes phones, agent groups,
agents, agents' queues, queues, DID routes, nodes, pause reasons, service numbers, IVR menus and
options, time conditions, holidays, call-type rules, music classes, customers and webhooks; the REST
API, the XML-RPC API and the web admin are thin faces over it.  `ResourceCatalog.resources()` describes
every resource and field (types, limits, choices, references) for schemas and forms.  docs/resources.md
lists them with their keys and rules.

Layout: spec.py (Field, Resource), scope.py (one transaction shared with the repositories), core.py,
callcenter.py and features.py (the resources), catalog.py (ResourceCatalog).
"""

from __future__ import annotations

from hotline.features.config.resources.catalog import BULK_ACTIONS, RESOURCES, ResourceCatalog
from hotline.features.config.resources.spec import Field, Resource

__all__ = ["BULK_ACTIONS", "RESOURCES", "Field", "Resource", "ResourceCatalog"]
