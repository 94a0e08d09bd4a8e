"""Model instances from the columns of a hand-written statement, built as the ORM builds them.

A hot statement written once as SQL (a lease that returns what it leased, a locking read
joined to another table) skips the ORM's query compilation on every call; its rows still
become model instances with each column's database converters applied (decryption, JSON).
"""

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any, TypeVar

from django.db import connection
from django.db.models import Field, Model

M = TypeVar("M", bound=Model)

Converter = Callable[[Any, Any, Any], Any]


def columns(model: type[Model], *, prefix: str, leave_out: Sequence[str] = ()) -> tuple[list[Field], str]:
    """The model's concrete fields (but ``leave_out``) and their columns as a SELECT list, each as ``prefix.column``."""
    fields = [field for field in model._meta.concrete_fields if field.name not in leave_out]
    return fields, ", ".join(f"{prefix}.{connection.ops.quote_name(field.column)}" for field in fields)


def instance(model: type[M], fields: Sequence[Field], values: Sequence[Any]) -> M:
    """An instance of ``model`` from ``values``, one per field in that order (fields left out stay deferred)."""
    names, order, converters = _loading(model, tuple(fields))
    values = list(values)
    for index, field_converters, expression in converters:
        for convert in field_converters:
            values[index] = convert(values[index], expression, connection)
    return model.from_db(connection.alias, names, [values[index] for index in order])


@lru_cache(maxsize=64)
def _loading(
    model: type[Model], fields: tuple[Field, ...]
) -> tuple[list[str], list[int], list[tuple[int, list[Converter], Any]]]:
    """The attribute names in the model's order (``Model.from_db`` takes values so), where each one's value is
    among the given ones, and per column that needs them its converters (the backend's, then the field's)."""
    position = {field: index for index, field in enumerate(fields)}
    in_model_order = [field for field in model._meta.concrete_fields if field in position]
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + field.get_db_converters(connection)  # type: ignore[attr-defined]
        if found:
            converters.append((index, found, expression))
    return [field.attname for field in in_model_order], [position[field] for field in in_model_order], converters
