"""The REST API under ``/api/v1/`` (``urls``): one module per resource, and the DRF plumbing they all share
(authentication, tenancy, permissions, errors, pagination, parsers, throttling, schema), which the
settings' ``REST_FRAMEWORK`` and ``SPECTACULAR_SETTINGS`` name."""
