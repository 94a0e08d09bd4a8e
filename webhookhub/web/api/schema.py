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
    "413": "The request body (or the event) is larger than the size limit.",
    "429": "Throttled: retry after the number of seconds in Retry-After.",
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            codes = ["401", "403", "429"]
            descriptions = dict(_DESCRIPTIONS)
            parameters = _query_parameters(operation)
            paged = bool(parameters & {"cursor", "page"})
            filtered = method == "get" and bool(parameters - {"cursor", "page", "page_size"})
            if method in ("post", "patch", "put") or filtered:
                codes.append("400")
            if "{" in path or paged:
                codes.append("404")
            if method == "get":
                descriptions["400"] = "A query parameter is not valid: the parameters named in `errors`."
                if paged:
                    descriptions["404"] = "No such object, or the page or cursor is not one this list gave out."
            if method in ("post", "patch", "put"):
                codes.append("413")
            for code in codes:
                operation.setdefault("responses", {}).setdefault(code, {"description": descriptions[code], **_REF})
    return result


def _query_parameters(operation: dict) -> set[str]:
    return {
        str(parameter.get("name"))
        for parameter in operation.get("parameters", [])
        if isinstance(parameter, dict) and parameter.get("in") == "query"
    }
