"""Live monitor data: queues with waiting callers, agents by state, today's service level and abandon rate."""

from hotline.features.monitor.service import QUEUE_STATS_EVENT, MonitorService, Thresholds, alarm_level

__all__ = ["QUEUE_STATS_EVENT", "MonitorService", "Thresholds", "alarm_level"]
