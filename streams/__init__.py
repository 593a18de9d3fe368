"""Streams: the pure per-window logic (entropy, windows, rules, policy, rates) and the Kafka worker around it."""
