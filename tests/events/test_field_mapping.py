"""events.field_mapping: paths into JSON bodies, listing them from a sample, checking a mapping, mapping a body."""

import pytest

from events.field_mapping import (
    MAX_PATHS,
    MappingError,
    MissingIdentifier,
    available_paths,
    map_body,
    parse_path,
    validate_mapping,
)

# --- parse_path ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "parts"),
    [
        ("phone", ["phone"]),
        ("contact.phone", ["contact", "phone"]),
        ("items[0].sku", ["items", 0, "sku"]),
        ("tags[1]", ["tags", 1]),
        ("matrix[2][10]", ["matrix", 2, 10]),
        ("a.b[3].c.d", ["a", "b", 3, "c", "d"]),
        ("first name", ["first name"]),
    ],
)
def test_parse_path_splits_keys_and_indexes(path, parts):
    assert parse_path(path) == parts


@pytest.mark.parametrize(
    "path",
    [
        "",
        ".phone",
        "contact.",
        "contact..phone",
        "[0]",
        "items[x]",
        "items[-1]",
        "items[]",
        "items[0]sku",
        "a]",
        None,
        3,
    ],
)
def test_parse_path_refuses_what_is_not_a_path(path):
    with pytest.raises(MappingError, match="is not a path"):
        parse_path(path)


# --- available_paths --------------------------------------------------------------------------------


def test_available_paths_lists_every_path_in_document_order_with_arrays():
    sample = {
        "contact": {"phone": "+1555", "tags": ["vip", {"since": 2020}]},
        "items": [{"sku": "A", "qty": 1}],
        "empty": {},
        "none": [],
        "n": None,
    }

    assert available_paths(sample) == [
        "contact",
        "contact.phone",
        "contact.tags",
        "contact.tags[0]",
        "contact.tags[1]",
        "contact.tags[1].since",
        "items",
        "items[0]",
        "items[0].sku",
        "items[0].qty",
        "empty",
        "none",
        "n",
    ]


def test_available_paths_skips_keys_a_path_cannot_name():
    sample = {"utm.source": "ads", "a[0]": 1, "b]": 2, "ok": {"x.y": 1, "z": 2}}

    assert available_paths(sample) == ["ok", "ok.z"]


def test_available_paths_of_an_empty_object_is_empty():
    assert available_paths({}) == []


@pytest.mark.parametrize("sample", [[], [{"a": 1}], "text", 1, None])
def test_available_paths_needs_an_object(sample):
    with pytest.raises(MappingError, match="must be a JSON object"):
        available_paths(sample)


def test_available_paths_refuses_a_sample_with_too_many_paths():
    with pytest.raises(MappingError, match=f"more than {MAX_PATHS} paths"):
        available_paths({f"k{n}": n for n in range(MAX_PATHS + 1)})


def test_available_paths_accepts_exactly_the_maximum():
    assert len(available_paths({f"k{n}": n for n in range(MAX_PATHS)})) == MAX_PATHS


# --- validate_mapping -------------------------------------------------------------------------------

SAMPLE = {"contact": {"phone": "+1555", "name": "Ana"}, "items": [{"sku": "A"}], "id": "c1"}


@pytest.mark.parametrize(
    ("mapping", "identifier"),
    [
        ({}, "contact.phone"),
        ({"contact.phone": "phone", "items[0].sku": "order.sku"}, "id"),
        ({"contact": "customer", "items": "lines"}, "contact.phone"),
        ({"id": "identifier"}, "id"),  # the identifier mapped: its field name is free
        ({"contact.phone": "customer.phone", "contact.name": "customer.name"}, "items[0].sku"),
    ],
)
def test_a_mapping_of_paths_in_the_sample_is_valid(mapping, identifier):
    assert validate_mapping(sample=SAMPLE, mapping=mapping, identifier=identifier) == {}


def test_a_path_the_sample_does_not_have_is_named_in_the_error():
    errors = validate_mapping(sample=SAMPLE, mapping={"contact.email": "email"}, identifier="id")

    assert errors == {"mapping": ["'contact.email' is not a path of the sample."]}


@pytest.mark.parametrize("field", ["1st", "first-name", "a..b", ".a", "a.", "", "has space", 5, None, ["phone"]])
def test_a_target_that_is_not_a_field_name_is_refused(field):
    errors = validate_mapping(sample=SAMPLE, mapping={"contact.phone": field}, identifier="id")

    assert list(errors) == ["mapping"]
    assert "not a field name" in errors["mapping"][0]


@pytest.mark.parametrize(
    ("mapping", "identifier"),
    [
        ({"contact.phone": "unmapped"}, "id"),
        ({"contact.phone": "unmapped.phone"}, "id"),
        ({"id": "unmapped"}, "id"),
        ({"contact.phone": "identifier"}, "id"),
        ({"contact.phone": "identifier.phone"}, "id"),
    ],
)
def test_reserved_targets_are_refused(mapping, identifier):
    errors = validate_mapping(sample=SAMPLE, mapping=mapping, identifier=identifier)

    assert list(errors) == ["mapping"]
    assert "is reserved" in errors["mapping"][0]


@pytest.mark.parametrize(
    "mapping",
    [
        {"contact.phone": "phone", "contact.name": "phone"},
        {"contact": "customer", "contact.phone": "customer.phone"},
    ],
    ids=["same field", "field and a field inside it"],
)
def test_two_paths_with_the_same_target_are_refused(mapping):
    errors = validate_mapping(sample=SAMPLE, mapping=mapping, identifier="id")

    assert list(errors) == ["mapping"]
    assert any("more than one path" in message for message in errors["mapping"])
    assert len(errors["mapping"]) == len(set(errors["mapping"]))


@pytest.mark.parametrize("identifier", ["contact.email", "items[1].sku", "contact..phone"])
def test_an_identifier_the_sample_does_not_have_is_refused(identifier):
    errors = validate_mapping(sample=SAMPLE, mapping={}, identifier=identifier)

    assert errors == {"identifier": [f"{identifier!r} is not a path of the sample."]}


@pytest.mark.parametrize("ordering_key_path", ["", "id", "contact.phone", "items[0].sku"])
def test_an_ordering_key_path_to_a_single_value_of_the_sample_is_valid(ordering_key_path):
    assert validate_mapping(sample=SAMPLE, mapping={}, identifier="id", ordering_key_path=ordering_key_path) == {}


@pytest.mark.parametrize(
    ("ordering_key_path", "shown"),
    [
        ("conversation.id", "is not a path of the sample"),
        ("items[1].sku", "is not a path of the sample"),
        ("contact..phone", "is not a path of the sample"),
        ("contact", "is an object or array in the sample; the ordering key must be a single value"),
        ("items", "is an object or array in the sample; the ordering key must be a single value"),
    ],
)
def test_an_ordering_key_path_the_sample_lacks_or_that_is_not_a_single_value_is_refused(ordering_key_path, shown):
    errors = validate_mapping(sample=SAMPLE, mapping={}, identifier="id", ordering_key_path=ordering_key_path)

    assert list(errors) == ["ordering_key_path"]
    assert errors["ordering_key_path"] == [f"{ordering_key_path!r} {shown}."]


def test_every_problem_is_reported_at_once():
    errors = validate_mapping(sample=SAMPLE, mapping={"nope": "a", "contact.phone": "1bad"}, identifier="missing")

    assert set(errors) == {"mapping", "identifier"}
    assert len(errors["mapping"]) == 2


@pytest.mark.parametrize("sample", [[], "text", None, [{"id": 1}]])
def test_a_sample_that_is_not_an_object_is_refused(sample):
    errors = validate_mapping(sample=sample, mapping={}, identifier="id")

    assert list(errors) == ["sample"]


@pytest.mark.parametrize("mapping", [[], ["id"], "id", None])
def test_a_mapping_that_is_not_an_object_is_refused(mapping):
    errors = validate_mapping(sample=SAMPLE, mapping=mapping, identifier="id")

    assert list(errors) == ["mapping"]


# --- map_body ---------------------------------------------------------------------------------------


def test_map_body_puts_values_into_nested_fields_and_keeps_the_rest_under_unmapped():
    body = {
        "contact": {"phone": "+1999", "name": "Bo"},
        "items": [{"sku": "Z", "qty": 3}, {"sku": "Y", "qty": 1}],
        "note": "hi",
        "tags": [],
    }
    mapping = {"contact.phone": "customer.phone", "items[0].sku": "customer.first_sku", "note": "note"}

    data = map_body(body, mapping=mapping, identifier="contact.phone")

    assert data == {
        "customer": {"phone": "+1999", "first_sku": "Z"},
        "note": "hi",
        "unmapped": {
            "contact.name": "Bo",
            "items[0].qty": 3,
            "items[1].sku": "Y",
            "items[1].qty": 1,
            "tags": [],
        },
    }


def test_mapping_an_object_or_array_takes_it_whole_and_leaves_nothing_of_it_unmapped():
    body = {"contact": {"phone": "+1", "name": "Bo"}, "items": [{"sku": "Z"}], "contact_id": 7}

    data = map_body(body, mapping={"contact": "person", "items": "lines"}, identifier="contact.phone")

    assert data == {
        "person": {"phone": "+1", "name": "Bo"},
        "lines": [{"sku": "Z"}],
        "identifier": "+1",
        "unmapped": {"contact_id": 7},
    }


def test_an_identifier_that_is_not_mapped_goes_under_identifier():
    data = map_body({"ref": "r-1", "x": 1}, mapping={}, identifier="ref")

    assert data == {"identifier": "r-1", "unmapped": {"x": 1}}


def test_a_mapped_identifier_goes_only_to_its_field():
    data = map_body({"ref": "r-1", "x": 1}, mapping={"ref": "reference"}, identifier="ref")

    assert data == {"reference": "r-1", "unmapped": {"x": 1}}


def test_a_body_fully_mapped_has_no_unmapped_key():
    data = map_body({"ref": "r-1", "x": 1}, mapping={"ref": "reference", "x": "x"}, identifier="ref")

    assert data == {"reference": "r-1", "x": 1}


def test_a_mapped_path_missing_from_the_body_is_left_out():
    body = {"ref": "r-1", "items": []}

    data = map_body(body, mapping={"items[0].sku": "sku", "contact.phone": "phone"}, identifier="ref")

    assert data == {"identifier": "r-1", "unmapped": {"items": []}}


def test_fields_the_sample_did_not_have_are_kept_under_unmapped():
    data = map_body({"ref": "r-1", "new": {"deep": [1, 2]}}, mapping={}, identifier="ref")

    assert data == {"identifier": "r-1", "unmapped": {"new.deep[0]": 1, "new.deep[1]": 2}}


@pytest.mark.parametrize(
    "body",
    [
        {"other": 1},
        {"contact": {}},
        {"contact": {"phone": None}},
        {"contact": {"phone": ""}},
        {"contact": {"phone": []}},
        {"contact": {"phone": {}}},
        {"contact": "+1555"},
        {"contact": [{"phone": "+1555"}]},
    ],
    ids=["absent", "absent inside", "null", "empty string", "empty array", "empty object", "parent a string", "list"],
)
def test_a_missing_null_or_empty_identifier_is_refused_naming_the_path(body):
    with pytest.raises(MissingIdentifier) as raised:
        map_body(body, mapping={"contact.phone": "phone"}, identifier="contact.phone")

    assert raised.value.path == "contact.phone"
    assert "'contact.phone'" in str(raised.value)


@pytest.mark.parametrize("value", [0, False, "0", [1], {"a": 1}])
def test_falsy_but_present_identifiers_are_accepted(value):
    assert map_body({"ref": value}, mapping={}, identifier="ref") == {"identifier": value}


def test_an_identifier_inside_an_array_is_read_by_index():
    data = map_body({"items": [{"sku": "A"}, {"sku": "B"}]}, mapping={}, identifier="items[1].sku")

    assert data == {"identifier": "B", "unmapped": {"items[0].sku": "A"}}


def test_an_identifier_index_beyond_the_array_is_missing():
    with pytest.raises(MissingIdentifier):
        map_body({"items": [{"sku": "A"}]}, mapping={}, identifier="items[1].sku")


def _values(value) -> list:
    """Every leaf value under ``value``, however it is nested."""
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _values(child)]
    if isinstance(value, list) and value:
        return [leaf for child in value for leaf in _values(child)]
    return [value]


def test_fields_whose_keys_a_path_cannot_name_are_still_kept_under_unmapped():
    """Nothing sent is dropped: keys with '.', '[' or ']' cannot be mapped, but their values are kept."""
    body = {"ref": "r-1", "utm.source": "newsletter", "meta": {"labels[0]": "vip"}}

    data = map_body(body, mapping={}, identifier="ref")

    assert sorted(_values(data["unmapped"])) == ["newsletter", "vip"]


def test_a_dotted_key_is_not_taken_for_a_field_of_a_mapped_object():
    body = {"ref": "r-1", "utm": {"campaign": "spring"}, "utm.source": "newsletter"}

    data = map_body(body, mapping={"utm": "utm"}, identifier="ref")

    assert data["utm"] == {"campaign": "spring"}
    assert "newsletter" in _values(data.get("unmapped", {}))


def test_a_dotted_key_and_the_nested_field_it_looks_like_are_both_kept():
    body = {"ref": "r-1", "a": {"b": "nested"}, "a.b": "dotted"}

    data = map_body(body, mapping={}, identifier="ref")

    assert sorted(_values(data["unmapped"])) == ["dotted", "nested"]
