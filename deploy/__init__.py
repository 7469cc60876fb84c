"""Running Kentongan: the CLI, the local Kafka broker, the demo."""
