"""In-process events: the bus every feature publishes to (agent states, call events, screen pops)."""

from hotline.features.events.bus import Event, EventBus, Subscription

__all__ = ["Event", "EventBus", "Subscription"]
