"""BMKG feeds: nowcast warnings (CAP 1.2), with pure parsing kept apart from polling."""
