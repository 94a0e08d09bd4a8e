"""OpenAPI: the error responses every operation can give, in the one error shape of ``errors.py``; request bodies
that refuse keys they do not define."""

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


def forbid_additional_properties(result, generator, request, public):
    """drf-spectacular postprocessing hook: request bodies say ``additionalProperties: false``, as the API behaves
    (``webhookhub.web.api.strict``): every object component a request body refers to, nested ones too. Free-form
    objects (an event's ``data``, custom headers, a filter) are inline schemas with their own
    ``additionalProperties`` and stay open."""
    components = result.get("components", {}).get("schemas", {})
    seen: set[str] = set()

    def close(schema: object) -> None:
        if isinstance(schema, list):
            for item in schema:
                close(item)
            return
        if not isinstance(schema, dict):
            return
        ref = schema.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in seen and name in components:
                seen.add(name)
                target = components[name]
                if target.get("type") == "object" and "properties" in target:
                    target.setdefault("additionalProperties", False)
                close(target)
            return
        for key in ("properties", "items", "allOf", "oneOf", "anyOf"):
            value = schema.get(key)
            close(list(value.values()) if key == "properties" and isinstance(value, dict) else value)

    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            if isinstance(operation, dict):
                for media in operation.get("requestBody", {}).get("content", {}).values():
                    close(media.get("schema"))
    return result
