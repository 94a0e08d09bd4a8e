"""Typed access to a model's columns by name (``_meta.get_field`` also returns relations)."""

from typing import Any, cast

from django.db import models


def concrete_field(model: type[models.Model], name: str) -> "models.Field[Any, Any]":
    """The field of ``model`` stored in column ``name`` (callers name concrete columns only)."""
    return cast("models.Field[Any, Any]", model._meta.get_field(name))
