"""Outbound webhooks: bus events POSTed to configured URLs, signed (HMAC-SHA256), retried, logged."""

from hotline.features.webhooks.service import WebhookService, backoff_delay, event_matches, sign

__all__ = ["WebhookService", "backoff_delay", "event_matches", "sign"]
