"""The pure core: entropy, windows, blocks, alert rules and policy, rates, records and the category codes.

Nothing here needs a broker, a model or the network; every module runs in a test without Kafka, and the worker
and the offline runs share it (``valuedrift.streams.core.pipeline``).
"""
