"""Operating valuedrift: the CLI, the embedded broker, Kafka helpers, the demo."""
