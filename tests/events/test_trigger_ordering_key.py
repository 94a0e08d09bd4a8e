"""A trigger's ordering key path: checked against the sample when saved, read from each request body."""

import pytest
from django.core.exceptions import ValidationError

from events.models import Trigger
from events.triggers import UnusableOrderingKey, create_trigger, ordering_key_in, update_trigger

SAMPLE = {"conversation": {"id": "c0"}, "contact": {"phone": "+1555"}, "tags": ["a"]}
TRIGGER = {"name": "crm", "event_type": "message.received", "sample": SAMPLE, "identifier": "contact.phone"}


# --- saving -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_trigger_stores_the_ordering_key_path(tenant):
    created = create_trigger(tenant=tenant, ordering_key_path="conversation.id", **TRIGGER)

    assert Trigger.objects.get(pk=created.trigger.pk).ordering_key_path == "conversation.id"


@pytest.mark.django_db
def test_create_trigger_without_an_ordering_key_path_stores_it_empty(tenant):
    created = create_trigger(tenant=tenant, **TRIGGER)

    assert Trigger.objects.get(pk=created.trigger.pk).ordering_key_path == ""


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["conversation.key", "conversation", "tags", "conversation..id", None, 5, "a\x00"])
def test_create_trigger_refuses_a_bad_ordering_key_path_naming_the_field_and_saves_nothing(tenant, path):
    with pytest.raises(ValidationError) as raised:
        create_trigger(tenant=tenant, ordering_key_path=path, **TRIGGER)

    assert list(raised.value.message_dict) == ["ordering_key_path"]
    assert not Trigger.objects.exists()


@pytest.mark.django_db
def test_update_trigger_refuses_a_path_the_sample_lacks_and_changes_nothing(tenant):
    trigger = create_trigger(tenant=tenant, ordering_key_path="conversation.id", **TRIGGER).trigger

    with pytest.raises(ValidationError) as raised:
        update_trigger(trigger=Trigger.objects.get(pk=trigger.pk), ordering_key_path="conversation.key")

    assert raised.value.message_dict == {"ordering_key_path": ["'conversation.key' is not a path of the sample."]}
    assert Trigger.objects.get(pk=trigger.pk).ordering_key_path == "conversation.id"


@pytest.mark.django_db
def test_update_trigger_checks_the_kept_path_against_a_new_sample(tenant):
    trigger = create_trigger(tenant=tenant, ordering_key_path="conversation.id", **TRIGGER).trigger

    with pytest.raises(ValidationError) as raised:
        update_trigger(trigger=Trigger.objects.get(pk=trigger.pk), sample={"contact": {"phone": "+1"}})

    assert list(raised.value.message_dict) == ["ordering_key_path"]
    assert Trigger.objects.get(pk=trigger.pk).sample == SAMPLE


@pytest.mark.django_db
def test_update_trigger_may_clear_the_path(tenant):
    trigger = create_trigger(tenant=tenant, ordering_key_path="conversation.id", **TRIGGER).trigger

    update_trigger(trigger=trigger, ordering_key_path="")

    assert Trigger.objects.get(pk=trigger.pk).ordering_key_path == ""


# --- reading a request body ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"conversation": {"id": "c1"}}, "c1"),
        ({"conversation": {"id": 42}}, "42"),
        ({"conversation": {"id": -7}}, "-7"),
        ({"conversation": {"id": "é 1"}}, "é 1"),
    ],
)
def test_the_string_or_integer_at_the_path_is_the_key(body, key):
    assert ordering_key_in(body, "conversation.id") == key


def test_no_path_gives_no_key_whatever_the_body():
    assert ordering_key_in({"conversation": {"id": "c1"}}, "") is None


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        ({}, "is missing in the request body"),
        ({"conversation": {}}, "is missing in the request body"),
        ({"conversation": ["c1"]}, "is missing in the request body"),
        ({"conversation": {"id": False}}, "must be a string or an integer, not false"),
        ({"conversation": {"id": None}}, "must be a string or an integer, not null"),
        ({"conversation": {"id": 2.0}}, "must be a string or an integer, not 2.0"),
        ({"conversation": {"id": {}}}, "must be a string or an integer, not {}"),
        ({"conversation": {"id": ""}}, "is not a valid key: ordering_key must be a non-empty string"),
        ({"conversation": {"id": "x" * 201}}, "is not a valid key: ordering_key must be at most 200 characters"),
        ({"conversation": {"id": "a\tb"}}, "is not a valid key: ordering_key must be printable characters only"),
    ],
)
def test_an_unusable_value_names_the_path_and_why(body, shown):
    with pytest.raises(UnusableOrderingKey) as raised:
        ordering_key_in(body, "conversation.id")

    assert raised.value.path == "conversation.id"
    assert str(raised.value).startswith(f"The ordering key 'conversation.id' {shown}")
