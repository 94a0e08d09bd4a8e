"""Inbound triggers, as the web layer offers them: the public URL an external system POSTs to (``view``),
their API (``api``, under ``/api/v1/triggers/``) and their admin (``admin``). What a trigger is and how a
body is mapped to event data stays in the domain: ``events.triggers`` and ``events.field_mapping``."""
