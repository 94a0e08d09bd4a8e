"""OpenAPI: the error responses every operation can give, in the one error shape of ``errors.py``."""

ERROR_SCHEMA = {
    "type": "object",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, in one sentence."},
        "errors": {
            "type": "object",
            "additionalProperties": {"type": "array", "items": {"type": "string"}},
            "description": "Messages per field (empty when the error is not about a field).",
        },
    },
    "required": ["detail", "errors"],
}
_REF = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
_DESCRIPTIONS = {
    "400": "Invalid input: the fields named in `errors` (nothing was written).",
    "401": "Missing, unknown or revoked API key.",
    "403": "Authenticated, but not an admin of the tenant (or not platform staff).",
    "404": "No such object in this tenant.",
    "413": "The event is larger than the size limit.",
    "429": "Throttled: retry after the number of seconds in Retry-After.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ["401", "403", "429"]
            if method in ("post", "patch", "put") or (method == "get" and path.endswith("/stats/")):
                codes.append("400")
            if "{" in path:
                codes.append("404")
            if method == "post" and path.endswith("/events/"):
                codes.append("413")
            for code in codes:
                operation.setdefault("responses", {}).setdefault(code, {"description": _DESCRIPTIONS[code], **_REF})
    return result
