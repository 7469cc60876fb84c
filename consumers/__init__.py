"""Delivery consumers: one pipeline (dedupe, subscribed, throttle, send with retry, record) for
SMS, push and the call centre; a channel is a Kafka shell around it and a sink."""
