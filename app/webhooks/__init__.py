"""Webhooks: an account's URLs notified of events, with signed, retried deliveries."""
