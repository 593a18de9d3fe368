"""The Kafka worker: the Faust app and its stages, aiokafka client settings and Prometheus metrics.

Everything here needs a broker; the logic it wires to Kafka lives in ``valuedrift.streams.core``.
"""
