"""INSERT statements written as SQL (no ORM compile) for the publish and record hot paths.

Compiling ORM inserts costs more CPU than the statements themselves (measured: about
0.3 ms per ``save()``/``bulk_create()`` against about 0.07 ms for the statement).
This builds the SQL once per (model, fields, rows) and prepares values with the
model fields' own ``get_db_prep_save`` and ``pre_save``, so column types, JSON and
datetimes are adapted exactly as the ORM would for PostgreSQL and SQLite. Many rows on
PostgreSQL go as one binary array per column (``unnest``): measured on a 100-event batch
publish, 0.84 ms of CPU per event against 1.12-1.42 ms with a placeholder per value.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.db import connection, models

from ground.db import bound_cursor
from ground.model_fields import concrete_field as column


@lru_cache(maxsize=64)
def _insert_sql(
    model: type[models.Model],
    attnames: tuple[str, ...],
    rows: int,
    returning: str | None,
    conflict: tuple[tuple[str, ...], str] | None = None,
) -> str:
    quote = connection.ops.quote_name
    meta = model._meta
    columns = ", ".join(quote(column(model, name).column) for name in attnames)
    row = "(" + ", ".join(["%s"] * len(attnames)) + ")"
    # Only quoted identifiers from the model and placeholders go into the text; values are parameters.
    sql = f"INSERT INTO {quote(meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"  # noqa: S608
    return sql + _ending(model, returning, conflict)


def _ending(model: type[models.Model], returning: str | None, conflict: tuple[tuple[str, ...], str] | None) -> str:
    """``ON CONFLICT ... DO NOTHING`` and ``RETURNING``, as asked."""
    quote = connection.ops.quote_name
    sql = ""
    if conflict:
        conflict_columns, predicate = conflict
        sql += f" ON CONFLICT ({', '.join(quote(c) for c in conflict_columns)}) WHERE {predicate} DO NOTHING"
    if returning:
        sql += f" RETURNING {quote(column(model, returning).column)}"
    return sql


@lru_cache(maxsize=64)
def _insert_unnest_sql(
    model: type[models.Model],
    attnames: tuple[str, ...],
    returning: str | None,
    conflict: tuple[tuple[str, ...], str] | None = None,
) -> str:
    """PostgreSQL, many rows: one array parameter per column (``unnest``), so the statement has a few
    placeholders however many rows it inserts (the driver's client-side parsing of thousands of
    placeholders cost more than the insert itself)."""
    quote = connection.ops.quote_name
    fields = [column(model, name) for name in attnames]
    columns = ", ".join(quote(field.column) for field in fields)
    arrays = ", ".join(f"%b::{field.db_type(connection)}[]" for field in fields)  # binary: no quoting
    sql = f"INSERT INTO {quote(model._meta.db_table)} ({columns}) SELECT * FROM unnest({arrays})"  # noqa: S608
    return sql + _ending(model, returning, conflict)


# Fields whose value, when already of this type (an aware datetime for a DateTimeField), the ORM would hand to
# psycopg as it is: ``get_db_prep_save`` returns it unchanged on PostgreSQL. Exact field classes only (a subclass,
# e.g. an encrypted field, may store something else).
_STORED_AS_IS: dict[type[models.Field], type] = {
    models.CharField: str,
    models.TextField: str,
    models.BooleanField: bool,
    models.IntegerField: int,
    models.PositiveIntegerField: int,
    models.BigIntegerField: int,
    models.DateTimeField: datetime,
}


def _column(field: models.Field, objs: Sequence[models.Model]) -> list[Any]:
    """PostgreSQL: the values of one column, as the ORM would send them. Values already stored as they are skip
    the field's per-value preparation (a fifth of a batch publish's CPU)."""
    if not _sets_itself(field):
        values = [getattr(obj, field.attname) for obj in objs]
        if _all_as_is(field, values):
            return values
    return [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objs]


def _sets_itself(field: models.Field) -> bool:
    return getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)


def _all_as_is(field: models.Field, values: Sequence[Any]) -> bool:
    target = field.target_field if isinstance(field, models.ForeignKey) else field
    kind = _STORED_AS_IS.get(type(target))
    return kind is not None and all(_as_is(value, kind) if value is not None else field.null for value in values)


def _as_is(value: Any, kind: type) -> bool:
    if kind is str:
        return isinstance(value, str)  # CharField.to_python keeps any str, a TextChoices member too
    if kind is datetime:
        return type(value) is datetime and value.tzinfo is not None
    return type(value) is kind  # not an int subclass (bool, IntegerChoices), which the field would convert


def insert(
    objs: Sequence[models.Model],
    fields: Sequence[str],
    returning: str | None = None,
    conflict: tuple[Sequence[str], str] | None = None,
) -> list:
    """Insert ``objs`` (all of one model) in one statement; returns the ``returning`` column per row
    inserted. ``conflict`` = (columns, predicate): rows colliding with that partial unique index are
    skipped (``ON CONFLICT ... DO NOTHING``)."""
    model = type(objs[0])
    concrete = [column(model, name) for name in fields]
    conflict_key = (tuple(conflict[0]), conflict[1]) if conflict else None
    if connection.vendor == "postgresql" and len(objs) > 1:
        columns = [_column(field, objs) for field in concrete]
        # Server-side binding, arrays in binary: the driver sends each array whole instead of quoting every
        # element into the statement's text (that cost more CPU than the insert).
        with bound_cursor() as cursor:
            cursor.execute(_insert_unnest_sql(model, tuple(fields), returning, conflict_key), columns)
            return [row[0] for row in cursor.fetchall()] if returning else []
    sql, params = insert_statement(objs, fields, returning, conflict)
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()] if returning else []


def insert_copies(template: models.Model, fields: Sequence[str], varying: Mapping[str, Sequence[Any]]) -> None:
    """Insert one row per position of ``varying``'s value lists (all of one length): ``template``'s values, but
    for the columns named in ``varying`` (attnames, not ones the field sets itself such as ``auto_now``).
    The rows share the template's defaults and ``auto_now_add`` time. Cheaper than a model instance per row:
    a batch publish's deliveries differ only in their event and endpoint."""
    model = type(template)
    rows = len(next(iter(varying.values())))
    concrete = [column(model, name) for name in fields]
    if any(_sets_itself(field) for field in concrete if field.attname in varying):
        raise ValueError("insert_copies: a column the field sets itself cannot vary.")
    if not rows:
        return
    postgresql = connection.vendor == "postgresql"
    columns: list[Any] = []
    for field in concrete:
        if field.attname in varying:
            values = varying[field.attname]
            as_is = postgresql and _all_as_is(field, values)
            columns.append(values if as_is else [field.get_db_prep_save(value, connection) for value in values])
        else:
            columns.append([field.get_db_prep_save(field.pre_save(template, add=True), connection)] * rows)
    with bound_cursor() as cursor:
        if postgresql and rows > 1:
            cursor.execute(_insert_unnest_sql(model, tuple(fields), None), columns)
        else:
            params = [value for row in zip(*columns, strict=True) for value in row]
            cursor.execute(_insert_sql(model, tuple(fields), rows, None), params)


def insert_statement(
    objs: Sequence[models.Model],
    fields: Sequence[str],
    returning: str | None = None,
    conflict: tuple[Sequence[str], str] | None = None,
) -> tuple[str, list]:
    """``insert``'s statement with a placeholder per value, for the caller to run (with others, in one round trip:
    a few rows; many go better through ``insert``)."""
    model = type(objs[0])
    concrete = [column(model, name) for name in fields]
    conflict_key = (tuple(conflict[0]), conflict[1]) if conflict else None
    params = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for obj in objs for field in concrete]
    return _insert_sql(model, tuple(fields), len(objs), returning, conflict_key), params


@lru_cache(maxsize=256)  # per number of payloads and deliveries: tenants' fan-outs differ
def _insert_with_children_sql(
    parent_model: type[models.Model],
    parent_fields: tuple[str, ...],
    groups: tuple[tuple[type[models.Model], tuple[str, ...], int], ...],
    conflict: tuple[tuple[str, ...], str] | None,
    guards: tuple[str, ...],
    also: tuple[str, ...],
    notify: str | None,
) -> str:
    quote = connection.ops.quote_name
    parent_meta = parent_model._meta
    parent_fields_ = [column(parent_model, name) for name in parent_fields]
    parent_columns = ", ".join(quote(field.column) for field in parent_fields_)
    parent_values = ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in parent_fields_)
    condition = " AND ".join(f"g.g{i}" for i in range(len(guards))) or "TRUE"
    parent_sql = (
        f"INSERT INTO {quote(parent_meta.db_table)} ({parent_columns})"  # noqa: S608 - identifiers only
        f" SELECT {parent_values} FROM guard g WHERE {condition}"
    )
    if conflict:
        columns, predicate = conflict
        parent_sql += f" ON CONFLICT ({', '.join(quote(c) for c in columns)}) WHERE {predicate} DO NOTHING"
    guard_sql = "SELECT " + (", ".join(f"{sql} AS g{i}" for i, sql in enumerate(guards)) or "TRUE AS g")
    sql = f"WITH guard AS ({guard_sql}), parent AS ({parent_sql} RETURNING 1)"
    for i, (child_model, child_fields, children) in enumerate(groups):
        fields = [column(child_model, name) for name in child_fields]
        row = "(" + ", ".join(f"CAST(%s AS {field.db_type(connection)})" for field in fields) + ")"
        sql += (
            f", children{i} AS (INSERT INTO {quote(child_model._meta.db_table)}"  # noqa: S608 - identifiers only
            f" ({', '.join(quote(f.column) for f in fields)})"
            f" SELECT * FROM (VALUES {', '.join([row] * children)}) AS v WHERE EXISTS (SELECT 1 FROM parent))"
        )
    for i, also_sql in enumerate(also):
        sql += f", also{i} AS ({also_sql})"
    if notify:  # once per inserted parent: a target list is evaluated per row
        sql += f", notified AS (SELECT {notify} FROM parent)"  # noqa: S608 - the caller's SQL expression
        return sql + " SELECT (SELECT count(*) FROM parent), guard.*, (SELECT count(*) FROM notified) FROM guard"  # noqa: S608
    return sql + " SELECT (SELECT count(*) FROM parent), guard.* FROM guard"  # noqa: S608


def insert_with_children(
    parent: models.Model,
    parent_fields: Sequence[str],
    children: Sequence[tuple[Sequence[models.Model], Sequence[str]]],
    *,
    conflict: tuple[Sequence[str], str] | None = None,
    guards: Sequence[tuple[str, Sequence]] = (),
    also: Sequence[tuple[str, Sequence]] = (),
    notify: tuple[str, Sequence] | None = None,
) -> tuple[bool, list[bool]]:
    """PostgreSQL only: insert ``parent`` and ``children`` (groups of rows of one model each, with the fields
    to insert: ``[(rows, fields), ...]``; empty groups are left out) in one statement, atomic on its own.

    Nothing is inserted unless every guard (a SQL boolean expression and its
    parameters) holds, or when ``conflict`` = (columns, predicate) names a partial
    unique index the parent collides with. Returns (parent inserted, each guard's
    value). ``also``: more statements (SQL and parameters) run as part of it; they may select
    from ``parent``, which has a row only if the parent was inserted. ``notify`` = (SQL
    expression, its parameters): a ``pg_notify`` raised only if the parent was inserted (sent
    when it commits). One
    round trip instead of several reads, BEGIN, an INSERT per table and COMMIT.
    """
    groups = [(rows, fields) for rows, fields in children if rows]
    conflict_key = (tuple(conflict[0]), conflict[1]) if conflict else None
    sql = _insert_with_children_sql(
        type(parent),
        tuple(parent_fields),
        tuple((type(rows[0]), tuple(fields), len(rows)) for rows, fields in groups),
        conflict_key,
        tuple(guard_sql for guard_sql, _ in guards),
        tuple(also_sql for also_sql, _ in also),
        notify[0] if notify else None,
    )
    params = [value for _, guard_params in guards for value in guard_params]
    parent_columns = [column(type(parent), name) for name in parent_fields]
    params += [field.get_db_prep_save(field.pre_save(parent, add=True), connection) for field in parent_columns]
    for rows, fields in groups:
        child_columns = [column(type(rows[0]), name) for name in fields]
        params += [
            field.get_db_prep_save(field.pre_save(child, add=True), connection)
            for child in rows
            for field in child_columns
        ]
    params += [value for _, also_params in also for value in also_params]
    params += list(notify[1]) if notify else []
    with bound_cursor() as cursor:
        cursor.execute(sql, params)
        inserted, *guard_values = cursor.fetchone()
    guard_values = guard_values[: len(guards)]
    return inserted == 1, [bool(value) for value in guard_values] if guards else []
