"""Citizen-report intake: HTTP API for the app and call centre, and Kannel's SMS callback.

Contract in short (the OpenAPI document at ``/openapi.json`` is the full one):

- ``POST /reports`` with ``X-API-Key`` (the app key files ``app``; the call-centre key files
  ``callcentre`` and ``sms``). 201 + ``{"report_id", "duplicate": false}`` once the raw body is
  acknowledged by Kafka on ``reports.raw`` (key = report id). The same ``report_id`` - or, when
  the body has none, the same ``Idempotency-Key`` - again: 200 + ``"duplicate": true`` and the
  same id; with different content: 409. ``report_id`` wins over ``Idempotency-Key``.
  401 no/unknown key, 403 channel not allowed, 413 body too large, 422 names the field,
  429 + ``Retry-After`` per reporter, 503 + ``Retry-After`` when Kafka does not acknowledge.
- ``GET /reports/{id}``: received / located (kelurahan) / attached (incident ids).
- ``GET /sms/inbound?secret=&sender=%p&text=%a``: Kannel sms-service; the body is the reply.
"""
