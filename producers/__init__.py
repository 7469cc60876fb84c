"""Kentongan stream producers: BMKG feeds and citizen reports onto Kafka."""
