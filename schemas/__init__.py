"""The contract between Kentongan's stages: event models, topic catalogue, geography, settings."""
