"""The entry points: the Django admin, the REST API, the delivery dashboard, the inbound trigger URL,
/metrics, the probes and the management commands. They may import every domain app; no domain app
imports them, nor HTTP, DRF, the admin or forms (``tests/test_architecture.py``)."""
