"""The entry points: the Django admin, the REST API, the delivery dashboard, the inbound trigger view
and /metrics. They may import every domain app; no domain app imports them
(``tests/test_architecture.py``)."""
