"""Request bodies are read strictly: a key the API does not understand is refused (400 naming it), not dropped.

Dropping unknown keys turns a typo (``retry_schedul``) or a field this version does not have into a 200 that
changed nothing, which the caller cannot tell from success. Every request serializer of the API takes
``StrictFieldsMixin`` first; the schema says the same (``additionalProperties: false`` on request bodies,
``webhookhub.web.api.schema.forbid_additional_properties``).
"""

import re
from collections.abc import Mapping
from difflib import get_close_matches
from typing import Any, ClassVar

from django.http import QueryDict
from rest_framework import serializers

# Form posts of the browsable API carry Django's CSRF token; it is not a field of anything.
_TRANSPORT_KEYS = frozenset({"csrfmiddlewaretoken"})
_FORM_KEY = re.compile(r"[.\[]")  # where a form key's field name ends


class NoBodySerializer(serializers.Serializer):
    """The body of an action that takes none (rotate, disable, resend...): any key is refused, as elsewhere."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping) and (keys := [str(key) for key in data if key not in _TRANSPORT_KEYS]):
            raise serializers.ValidationError(
                {key: [f"Unknown field {key!r}: this action takes no body."] for key in keys}
            )
        return {}


def refuse_any_body(request: Any) -> None:
    """400 naming the keys of a body sent to an action that takes none."""
    NoBodySerializer(data=request.data).is_valid(raise_exception=True)


class StrictFieldsMixin(serializers.Serializer):
    """Refuse keys that are not writable fields of this serializer, each under its own name: "Unknown field" (with
    the known ones, and a near match) or "Read-only field" for one that reads show but writes cannot set (a
    body copied from a GET). Nested serializers and list items with the mixin check their own keys (errors as
    ``auth.tokn``, ``events.0.colour``); free-form objects (``DictField``, ``JSONField``, e.g. an event's ``data``)
    are never looked into.
    """

    # Names that reads of the same resource show, beyond this serializer's own read-only fields.
    read_only_names: ClassVar[frozenset[str]] = frozenset()
    # A message of its own for a key that is not a field, e.g. where the value goes instead.
    unknown_field_hints: ClassVar[dict[str, str]] = {}

    def shown_only(self) -> set[str]:
        """Names that are read-only here: the serializer's read-only fields and ``read_only_names``."""
        return {name for name, field in self.fields.items() if field.read_only} | set(self.read_only_names)

    def to_internal_value(self, data: Any) -> Any:
        problems = self._key_problems(data) if isinstance(data, Mapping) else {}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if problems and isinstance(exc.detail, dict):
                raise serializers.ValidationError({**problems, **exc.detail}) from exc
            raise
        if problems:
            raise serializers.ValidationError(problems)
        return value

    def _key_problems(self, data: Mapping) -> dict[str, list[str]]:
        writable = sorted(name for name, field in self.fields.items() if not field.read_only)
        read_only = self.shown_only() - set(writable)
        form = isinstance(data, QueryDict)  # a form post spells nested values "auth.type", "events[0]type"
        problems = {}
        for key in data:
            field_name = _FORM_KEY.split(key, maxsplit=1)[0] if form else key
            if field_name in writable or key in _TRANSPORT_KEYS:
                continue
            problems[str(key)] = [self._message(str(key), writable, read_only)]
        return problems

    def _message(self, key: str, writable: list[str], read_only: set[str]) -> str:
        if key in read_only:
            return f"{key!r} is read-only: it cannot be written. Leave it out of the request."
        if key in self.unknown_field_hints:
            return f"Unknown field {key!r}: {self.unknown_field_hints[key]}"
        near = get_close_matches(key, writable, n=1, cutoff=0.75)
        guess = f"; did you mean {near[0]!r}?" if near else "."
        return f"Unknown field {key!r}{guess} Known fields: {', '.join(writable) or 'none'}."
