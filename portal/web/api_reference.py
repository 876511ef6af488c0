"""The API reference page (/api/docs/): the OpenAPI schema read as a page, rendered by the
server like every other page, so it passes the same accessibility checks (Swagger UI, as
served before, had 51 axe findings: contrast, nested buttons, no `lang`) and needs no
script or inline style. The schema itself stays at /api/schema/ for tools."""

from __future__ import annotations

from django.shortcuts import render
from django.views.decorators.http import require_GET
from drf_spectacular.generators import SchemaGenerator

from portal.web.schema import NO_NUL, NOT_BLANK

METHODS = ("get", "post", "put", "patch", "delete")
ENUM_SHOWN = 12


def _component(schema: dict, ref: str) -> tuple[str, dict]:
    name = ref.rsplit("/", 1)[-1]
    return name, schema["components"]["schemas"].get(name, {})


def type_text(document: dict, schema: dict) -> str:
    """A person's reading of a JSON schema: `string (date)`, `one of: a, b`, `integer, 1 to 200`."""
    if "$ref" in schema:
        name, target = _component(document, schema["$ref"])
        return type_text(document, target) if "enum" in target else name
    for combined in ("allOf", "oneOf", "anyOf"):
        if combined in schema:
            return " or ".join(type_text(document, s) for s in schema[combined])
    if "enum" in schema:
        values = [str(v) for v in schema["enum"] if v not in ("", None)]
        if len(values) > ENUM_SHOWN:
            return f"one of {len(values)} values: {', '.join(values[:ENUM_SHOWN])}, …"
        return "one of: " + ", ".join(values)
    kind = schema.get("type", "any")
    if kind == "array":
        return f"list of {type_text(document, schema.get('items', {}))}"
    text = kind + (f" ({schema['format']})" if "format" in schema else "")
    low, high = (
        schema.get("minimum", schema.get("minLength")),
        schema.get("maximum", schema.get("maxLength")),
    )
    if low is not None and high is not None:
        text += f", {low} to {high}"
    elif low is not None:
        text += f", at least {low}"
    elif high is not None:
        text += f", at most {high}"
    if ("minLength" in schema or "maxLength" in schema) and kind == "string":
        text += " characters"
    return text


def pattern_text(schema: dict) -> str:
    """A pattern worth a reader's eye (not the NUL rule every text has)."""
    pattern = schema.get("pattern", "")
    return {NO_NUL: "", NOT_BLANK: "not blank"}.get(pattern, pattern)


def area_of(path: str) -> str:
    """`/api/v1/releases/{id}/log` → `releases`: the operations grouped by what they act on."""
    parts = path.strip("/").split("/")
    return parts[2] if len(parts) > 2 and parts[:2] == ["api", "v1"] else "schema"


def _fields(document: dict, schema: dict) -> list[dict]:
    if "$ref" in schema:
        schema = _component(document, schema["$ref"])[1]
    required = set(schema.get("required", []))
    return [
        {"name": name, "type": type_text(document, field), "required": name in required,
         "description": field.get("description", ""), "pattern": pattern_text(field)}
        for name, field in schema.get("properties", {}).items()
    ]  # fmt: skip


def _operation(document: dict, path: str, method: str, operation: dict) -> dict:
    body = operation.get("requestBody", {}).get("content", {})
    content_type, media = next(iter(body.items()), ("", {}))
    return {
        "id": operation.get("operationId", f"{method}-{path}"),
        "method": method.upper(),
        "path": path,
        "tag": area_of(path),
        "description": operation.get("description", ""),
        "parameters": [
            {
                "name": p["name"],
                "in": p["in"],
                "required": p.get("required", False),
                "type": type_text(document, p.get("schema", {})),
                "pattern": pattern_text(p.get("schema", {})),
                "description": p.get("description", ""),
            }
            for p in operation.get("parameters", [])
        ],
        "body_type": content_type,
        "body": _fields(document, media.get("schema", {})) if media else [],
        "responses": [
            {
                "status": status,
                "description": answer.get("description", ""),
                "content_types": ", ".join(answer.get("content", {})),
            }
            for status, answer in sorted(operation.get("responses", {}).items())
        ],
    }


def reference_of(document: dict) -> list[dict]:
    """The schema's operations grouped by area, in the schema's order."""
    groups: dict[str, list[dict]] = {}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                operation = _operation(document, path, method, item[method])
                groups.setdefault(operation["tag"], []).append(operation)
    return [{"tag": tag, "operations": operations} for tag, operations in groups.items()]


@require_GET
def api_reference(request):
    # No request: the schema as anyone reads it (the generator wants a DRF request).
    document = SchemaGenerator().get_schema(request=None, public=True)
    return render(
        request,
        "portal/api_reference.html",
        {"info": document.get("info", {}), "groups": reference_of(document)},
    )
