"""Where a delivery job finally goes: the outbox file, Kannel, an HTTP SMS gateway, FCM, Web
Push, the 112 desk's webhook. Each is one class with ``send(job)``."""
