"""Paths into JSON bodies, for inbound triggers: list them from a sample, read them, map them to event fields.

A path names a value by object keys and array indexes: ``contact.phone``, ``items[0].sku``,
``tags[1]``. Keys that contain ``.``, ``[`` or ``]`` cannot be mapped (they are still kept
under ``unmapped``, quoted: ``utm["utm.source"]``). Mapped values go
to fields of the event's data (``phone``, or ``contact.phone`` to nest); every other leaf of
the body is kept under ``unmapped`` by its path, so nothing sent is dropped.
"""

import json
import re
from typing import Any

UNMAPPED_KEY = "unmapped"
IDENTIFIER_KEY = "identifier"  # where the identifier goes when it is not mapped to a field
MAX_PATHS = 2000

_PATH = re.compile(r"[^.\[\]]+(?:\.[^.\[\]]+|\[\d+\])*")
_UNADDRESSABLE = re.compile(r"[.\[\]]")
_TOKEN = re.compile(r"[^.\[\]]+|\[\d+\]")
_FIELD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_MISSING = object()


class MappingError(ValueError):
    """A path, field or mapping that cannot be used; the message says which and why."""


def parse_path(path: str) -> list[str | int]:
    """``items[0].sku`` -> ``["items", 0, "sku"]``."""
    if not isinstance(path, str) or not _PATH.fullmatch(path):
        raise MappingError(f"{path!r} is not a path; write one like contact.phone or items[0].sku.")
    return [int(token[1:-1]) if token.startswith("[") else token for token in _TOKEN.findall(path)]


def _addressable(key: str) -> bool:
    return bool(key) and not _UNADDRESSABLE.search(key)


def _join(prefix: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{prefix}[{key}]"
    if not _addressable(key):  # only ever in "unmapped": quoted, so it cannot pass for a nested field
        return f"{prefix}[{json.dumps(key, ensure_ascii=False)}]"
    return f"{prefix}.{key}" if prefix else key


Parts = tuple[str | int, ...]


def _walk(value: Any, prefix: str = "", parts: Parts = (), *, addressable_only: bool = True):
    """(path, parts, value, is_leaf) for everything under ``value``, in document order.

    Empty keys and keys with ``.``, ``[`` or ``]`` cannot be named by a path: they are skipped when listing
    what a mapping may use, and kept (as ``a["b.c"]``) when collecting the unmapped.
    """
    children: list[tuple[str | int, Any]] = []
    if isinstance(value, dict):
        children = [(key, child) for key, child in value.items() if _addressable(key) or not addressable_only]
    elif isinstance(value, list):
        children = list(enumerate(value))
    for key, child in children:
        path, child_parts = _join(prefix, key), (*parts, key)
        nested = isinstance(child, dict | list) and bool(child)
        yield path, child_parts, child, not nested
        if nested:
            yield from _walk(child, path, child_parts, addressable_only=addressable_only)


def available_paths(sample: dict) -> list[str]:
    """Every path in the sample, objects and arrays included, as a mapping may name them."""
    if not isinstance(sample, dict):
        raise MappingError("The sample must be a JSON object.")
    found = []
    for path, _, _, _ in _walk(sample):
        found.append(path)
        if len(found) > MAX_PATHS:
            raise MappingError(f"The sample has more than {MAX_PATHS} paths; trim it to the fields that matter.")
    return found


def value_at(body: Any, path: str) -> Any:
    """The value at ``path``, or ``MISSING`` (see ``is_missing``)."""
    current = body
    for part in parse_path(path):
        if isinstance(part, int) and isinstance(current, list) and part < len(current):
            current = current[part]
        elif isinstance(part, str) and isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def is_missing(value: Any) -> bool:
    return value is _MISSING


def _not_a_single_value(sample: dict, known: set[str], path: str, what: str) -> str | None:
    if path not in known:
        return f"{path!r} is not a path of the sample."
    if isinstance(value_at(sample, path), dict | list):
        return f"{path!r} is an object or array in the sample; the {what} must be a single value."
    return None


def validate_mapping(
    *, sample: dict, mapping: dict, identifier: str, ordering_key_path: str = ""
) -> dict[str, list[str]]:
    """Errors by argument ({} when fine): every path must be in the sample, every field usable once.

    ``ordering_key_path`` is optional (empty: none); like the identifier, it must name a single value.
    """
    errors: dict[str, list[str]] = {}
    try:
        known = set(available_paths(sample))
    except MappingError as exc:
        return {"sample": [str(exc)]}
    if not isinstance(mapping, dict):
        return {"mapping": ['The mapping must be an object: {"<path in the body>": "<field of the event data>"}.']}
    fields: list[str] = []
    for path, field in mapping.items():
        if path not in known:
            errors.setdefault("mapping", []).append(f"{path!r} is not a path of the sample.")
        if not isinstance(field, str) or not _FIELD.fullmatch(field):
            errors.setdefault("mapping", []).append(
                f"{path!r} maps to {field!r}, which is not a field name (letters, digits, _ and . to nest)."
            )
            continue
        fields.append(field)
    reserved = {UNMAPPED_KEY} | ({IDENTIFIER_KEY} if identifier not in mapping else set())
    for field in fields:
        top = field.split(".")[0]
        if top in reserved:
            errors.setdefault("mapping", []).append(f"{field!r} is reserved for the {top} value.")
        clashes = [other for other in fields if other != field and other.startswith(field + ".")]
        if fields.count(field) > 1 or clashes:
            errors.setdefault("mapping", []).append(f"{field!r} is the target of more than one path.")
    if problem := _not_a_single_value(sample, known, identifier, "identifier"):
        errors["identifier"] = [problem]
    if ordering_key_path and (problem := _not_a_single_value(sample, known, ordering_key_path, "ordering key")):
        errors["ordering_key_path"] = [problem]
    if "mapping" in errors:
        errors["mapping"] = sorted(set(errors["mapping"]), key=errors["mapping"].index)
    return errors


def _put(data: dict, field: str, value: Any) -> None:
    *parents, last = field.split(".")
    for name in parents:
        data = data.setdefault(name, {})
    data[last] = value


def _covered(parts: Parts, mapped: list[Parts]) -> bool:
    return any(parts[: len(m)] == m for m in mapped)


class MissingIdentifier(MappingError):
    def __init__(self, path: str) -> None:
        super().__init__(f"The identifier {path!r} is missing or empty in the request body.")
        self.path = path


def map_body(body: dict, *, mapping: dict[str, str], identifier: str) -> dict[str, Any]:
    """The event data for this body: mapped fields, the identifier, and the rest under ``unmapped``."""
    key = value_at(body, identifier)
    if is_missing(key) or key is None or key == "" or key == [] or key == {}:
        raise MissingIdentifier(identifier)
    data: dict[str, Any] = {}
    present = []
    for path, field in mapping.items():
        value = value_at(body, path)
        if not is_missing(value):
            _put(data, field, value)
            present.append(tuple(parse_path(path)))
    if identifier not in mapping:
        data[IDENTIFIER_KEY] = key
        present.append(tuple(parse_path(identifier)))
    unmapped = {
        path: value
        for path, parts, value, leaf in _walk(body, addressable_only=False)
        if leaf and not _covered(parts, present)
    }
    if unmapped:
        data[UNMAPPED_KEY] = unmapped
    return data
