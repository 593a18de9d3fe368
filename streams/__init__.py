"""Streams: the pure core (``core``), the settings, input adapters, alert sinks and offline runs around it, and the
Kafka worker (``worker``), the one part that needs a broker."""
