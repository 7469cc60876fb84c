"""Delivery consumers: SMS, push, call centre."""
