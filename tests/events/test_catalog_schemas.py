"""Every catalog type's data has a JSON Schema: its example passes, extra fields pass, broken identifiers do not."""

import copy

import pytest
from jsonschema import Draft202012Validator

from bench.common import message_data
from events.catalog import CATALOG
from events.catalog_schemas import SCHEMAS

NAMES = [spec.name for spec in CATALOG]
EXAMPLES = {spec.name: spec.example for spec in CATALOG}


def _validator(name):
    return Draft202012Validator(SCHEMAS[name], format_checker=Draft202012Validator.FORMAT_CHECKER)


def _errors(name, data):
    return [(error.json_path, error.validator, error.message) for error in _validator(name).iter_errors(data)]


def _with_extra_fields(value):
    """A deep copy with an unknown field added to every object, top level and nested."""
    if isinstance(value, dict):
        return {**{key: _with_extra_fields(item) for key, item in value.items()}, "x_future": {"added": [1, "a"]}}
    if isinstance(value, list):
        return [_with_extra_fields(item) for item in value]
    return value


def _walk(node, path="$"):
    yield path, node
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _walk(value, f"{path}[{index}]")


# --- coverage -----------------------------------------------------------------------------------------


def test_every_catalog_type_has_its_schema_and_no_other_names_have_one():
    assert [spec.name for spec in CATALOG if spec.schema is None] == []
    assert all(spec.schema is SCHEMAS[spec.name] for spec in CATALOG)
    assert set(SCHEMAS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_the_schema_is_a_valid_draft_2020_12_object_schema_titled_by_its_type(name):
    schema = SCHEMAS[name]

    Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert (schema["type"], schema["title"]) == ("object", name)
    assert schema["description"]


REQUIRED_BY_FAMILY = {
    "message": ["id", "direction", "chat_id"],
    "chat": ["id", "status"],
    "contact": ["id"],
    "keyword": ["id"],
    "campaign": ["id"],
    "call": ["id", "from", "to"],
    "webhook": [],
}


@pytest.mark.parametrize("name", NAMES)
def test_only_the_identifiers_and_defining_fields_are_required(name):
    assert SCHEMAS[name].get("required", []) == REQUIRED_BY_FAMILY[name.split(".")[0]]


# --- what passes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_the_example_of_each_type_validates(name):
    assert _errors(name, EXAMPLES[name]) == []


@pytest.mark.parametrize("name", ["message.received", "message.sent"])
def test_the_benchmark_message_validates(name):
    assert _errors(name, message_data("r", 7)) == []


@pytest.mark.parametrize("name", NAMES)
def test_unknown_extra_fields_are_allowed_at_the_top_and_nested(name):
    data = _with_extra_fields(copy.deepcopy(EXAMPLES[name]))
    assert "x_future" in data

    assert _errors(name, data) == []


@pytest.mark.parametrize("name", NAMES)
def test_no_schema_closes_an_object_to_extra_fields(name):
    closing = [
        path
        for path, node in _walk(SCHEMAS[name])
        if isinstance(node, dict)
        and any(node.get(keyword, True) is not True for keyword in ("additionalProperties", "unevaluatedProperties"))
    ]

    assert closing == []


def test_a_person_or_contact_reference_may_be_null():
    data = {**EXAMPLES["chat.reassigned"], "assignee": None, "previous_assignee": None, "contact": None}

    assert _errors("chat.reassigned", data) == []


# --- what fails, and on which rule --------------------------------------------------------------------


def test_a_message_without_its_id_fails_on_required():
    data = {key: value for key, value in EXAMPLES["message.received"].items() if key != "id"}

    assert _errors("message.received", data) == [("$", "required", "'id' is a required property")]


def test_a_message_with_an_unknown_direction_fails_on_the_enum():
    data = {**EXAMPLES["message.received"], "direction": "sideways"}

    assert [error[:2] for error in _errors("message.received", data)] == [("$.direction", "enum")]


def test_a_contact_with_a_numeric_id_fails_on_the_type_of_the_id():
    data = {**EXAMPLES["contact.created"], "id": 5}

    assert [error[:2] for error in _errors("contact.created", data)] == [("$.id", "type")]


def test_a_campaign_with_a_negative_count_fails_on_the_minimum():
    data = {**EXAMPLES["campaign.sent"], "sent": -1}

    assert [error[:2] for error in _errors("campaign.sent", data)] == [("$.sent", "minimum")]


def test_a_nested_contact_without_its_id_fails_on_required_inside_it():
    data = {**EXAMPLES["chat.closed"], "contact": {"name": "x"}}

    assert _errors("chat.closed", data) == [("$.contact", "required", "'id' is a required property")]
