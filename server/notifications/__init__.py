"""Notification senders: one notification to one destination, over each provider's own wire protocol."""
