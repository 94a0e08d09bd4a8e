"""The bodies of the payload formats (``subscriptions.payloads``): presets, custom shapes, the Heymarket token slot,
and what ``shape_problem`` refuses before an endpoint is saved."""

import json

import pytest

from events.catalog import CATALOG
from subscriptions.models import PayloadFormat, Verification
from subscriptions.payloads import (
    MAX_SHAPE_CHARS,
    TOKEN_SLOT,
    Shape,
    ShapeError,
    example_envelope,
    fill_token,
    heymarket_webhook_id,
    shape_of,
    shape_problem,
)

EXAMPLES = {spec.name: spec.example for spec in CATALOG}
CONTACT = EXAMPLES["contact.created"]
CONTACT_TEXT = (
    '{"id":"ct_01jd3k7q2m","first_name":"Ana","last_name":"Silva","phone_number":"+15555550123",'
    '"email":"ana@example.com","groups":["vip"],"source":"web_form","keyword":null}'
)
EVENT_ID = "evt_01jd3kexample0000000000000"
TENANT_ID = "tn_01jd3kexample0000000000000"

HEYMARKET_NAMES = {
    "message.received": "message_recieved",  # sic: Heymarket's spelling
    "message.sent": "message_sent",
    "chat.closed": "chat_closed",
    "chat.opened": "chat_opened",
    "chat.pending": "chat_pending",
    "chat.reassigned": "chat_reassigned",
    "chat.transferred": "chat_transferred",
    "contact.opted_out": "target_opt_out",
    "contact.opted_in": "target_opt_in",
}


def _envelope(event_type: str = "contact.created", data: dict | None = None) -> dict:
    return example_envelope(event_type, CONTACT if data is None else data)


# --- presets ------------------------------------------------------------------------------------------


def test_the_catalog_example_of_contact_created_renders_exactly_in_each_preset():
    heymarket = Shape(PayloadFormat.HEYMARKET, webhook_id=281474976710655, token=False).render(_envelope())
    heymarket_with_token = Shape(PayloadFormat.HEYMARKET, webhook_id=7, token=True).render(_envelope())
    heyy = Shape(PayloadFormat.HEYY).render(_envelope())
    customertext = Shape(PayloadFormat.CUSTOMERTEXT).render(_envelope())

    assert heymarket == '{"id":281474976710655,"type":"contact_created","event_data":' + CONTACT_TEXT + "}"
    assert heymarket_with_token == (
        '{"id":7,"token":"\\u0000","type":"contact_created","event_data":' + CONTACT_TEXT + "}"
    )
    assert heyy == (
        f'{{"id":"{EVENT_ID}","tenantId":"{TENANT_ID}","event":"contact.created","data":' + CONTACT_TEXT + "}"
    )
    assert customertext == '{"event":"new_contact","timestamp":"2026-11-22T10:00:00Z","data":' + CONTACT_TEXT + "}"


def test_presets_keep_non_ascii_text_as_it_is():
    body = Shape(PayloadFormat.HEYY).render(_envelope("message.received", {"text": "Olá 👋"}))

    assert body.endswith('"data":{"text":"Olá 👋"}}')


@pytest.mark.parametrize(("event_type", "name"), list(HEYMARKET_NAMES.items()))
def test_heymarket_names_each_documented_type_as_heymarket_does(event_type, name):
    body = json.loads(Shape(PayloadFormat.HEYMARKET, webhook_id=1).render(_envelope(event_type, EXAMPLES[event_type])))

    assert body == {"id": 1, "type": name, "event_data": EXAMPLES[event_type]}
    assert list(body) == ["id", "type", "event_data"]


@pytest.mark.parametrize(
    ("event_type", "name"),
    [
        ("chat.updated", "chat_updated"),
        ("message.updated", "message_updated"),
        ("invoice.paid_late", "invoice_paid_late"),
    ],
)
def test_heymarket_names_an_unmapped_type_by_its_dotted_name_with_underscores(event_type, name):
    body = json.loads(Shape(PayloadFormat.HEYMARKET, webhook_id=1).render(_envelope(event_type, {"id": "x"})))

    assert body["type"] == name


@pytest.mark.parametrize(
    ("event_type", "name"),
    [("contact.created", "new_contact"), ("message.received", "inbound_message"), ("chat.closed", "chat_closed")],
)
def test_customertext_names_types_as_customertext_does_and_falls_back_to_underscores(event_type, name):
    body = json.loads(Shape(PayloadFormat.CUSTOMERTEXT).render(_envelope(event_type, {"id": "x"})))

    assert body["event"] == name


# --- the heymarket token slot -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("verification", "has_slot"),
    [(Verification.TOKEN, True), (Verification.BOTH, True), (Verification.SIGNATURE, False)],
)
def test_the_token_slot_is_in_a_heymarket_body_only_when_the_verification_includes_the_token(verification, has_slot):
    shape = shape_of("ep_01jd3kexample", PayloadFormat.HEYMARKET, "", verification)
    assert shape is not None

    body = shape.render(_envelope())

    assert (TOKEN_SLOT in body) is has_slot
    assert ('"token"' in body) is has_slot
    assert json.loads(body)["id"] == heymarket_webhook_id("ep_01jd3kexample")


def test_fill_token_puts_the_token_in_the_slot_json_escaped():
    body = Shape(PayloadFormat.HEYMARKET, webhook_id=5, token=True).render(_envelope())
    token = 'tok "quoted" back\\slash é'

    sent = fill_token(body, token)

    assert sent == (
        '{"id":5,"token":"tok \\"quoted\\" back\\\\slash é","type":"contact_created","event_data":' + CONTACT_TEXT + "}"
    )
    assert json.loads(sent)["token"] == token
    assert TOKEN_SLOT not in sent


def test_fill_token_leaves_a_body_without_a_slot_unchanged():
    body = Shape(PayloadFormat.HEYY).render(_envelope())

    assert fill_token(body, "some-token") == body


def test_the_heymarket_webhook_id_is_stable_per_endpoint_and_exact_in_javascript():
    ids = [heymarket_webhook_id(f"ep_{n:026d}") for n in range(200)]

    assert ids == [heymarket_webhook_id(f"ep_{n:026d}") for n in range(200)]
    assert all(isinstance(value, int) and 0 <= value < 2**48 for value in ids)
    assert len(set(ids)) == len(ids)


@pytest.mark.parametrize("payload_format", [PayloadFormat.HEYY, PayloadFormat.CUSTOMERTEXT])
def test_other_presets_take_no_webhook_id_or_token(payload_format):
    assert shape_of("ep_1", payload_format, "", Verification.SIGNATURE) == Shape(payload_format)


def test_the_standard_format_has_no_shape():
    assert shape_of("ep_1", PayloadFormat.STANDARD, "", Verification.SIGNATURE) is None


# --- custom shapes --------------------------------------------------------------------------------------


def test_a_custom_shape_gives_its_object_in_its_key_order():
    shape = shape_of(
        "ep_1", PayloadFormat.CUSTOM, "{event: type, who: data.contact.name, text: data.text}", "signature"
    )
    assert shape is not None

    body = shape.render(example_envelope("message.received", {**EXAMPLES["message.received"], "text": "Olá"}))

    assert body == '{"event":"message.received","who":"Ana Silva","text":"Olá"}'


def test_a_custom_shape_that_gives_null_for_this_events_data_raises_shape_error():
    shape = Shape(PayloadFormat.CUSTOM, expression="data.contact && {contact: data.contact}")
    assert shape.render(_envelope("message.received", EXAMPLES["message.received"])).startswith('{"contact":')

    with pytest.raises(ShapeError, match="gave null, not a JSON object"):
        shape.render(_envelope("contact.created", {"id": "ct_1"}))


def test_a_custom_shape_whose_result_is_over_the_size_limit_raises_shape_error(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 100}
    shape = Shape(PayloadFormat.CUSTOM, expression="{a: data}")

    assert shape.render(_envelope(data={"x": "y" * 10})) == '{"a":{"x":"yyyyyyyyyy"}}'
    with pytest.raises(ShapeError, match="the limit is 100 bytes"):
        shape.render(_envelope(data={"x": "y" * 100}))


# --- shape_problem ----------------------------------------------------------------------------------------


def test_a_valid_shape_has_no_problem():
    assert shape_problem(PayloadFormat.CUSTOM, "{event: type, payload: data}", ["*"]) is None


def test_bad_syntax_is_a_problem():
    problem = shape_problem(PayloadFormat.CUSTOM, "{event: type", ["*"])

    assert problem is not None and problem.startswith("Not a JMESPath expression")


@pytest.mark.parametrize(
    ("expression", "kind"),
    [("type", "a string"), ("[type, id]", "an array"), ("data.no_such_field", "null"), ("`3`", "a number")],
)
def test_a_shape_that_gives_no_object_is_a_problem(expression, kind):
    problem = shape_problem(PayloadFormat.CUSTOM, expression, ["message.received"])

    assert problem == f"For the example of message.received: The payload shape gave {kind}, not a JSON object."


def test_an_expression_longer_than_the_limit_is_a_problem():
    long = "{a: data" + ", a: data" * (MAX_SHAPE_CHARS // 9) + "}"
    assert len(long) > MAX_SHAPE_CHARS

    assert shape_problem(PayloadFormat.CUSTOM, long, ["*"]) == f"The shape is longer than {MAX_SHAPE_CHARS} characters."


def test_a_shape_whose_result_is_over_the_size_limit_is_a_problem(settings):
    settings.WEBHOOKHUB = {**settings.WEBHOOKHUB, "MAX_PAYLOAD_BYTES": 2000}
    few = "{a: data, b: data}"
    many = "{a: data, b: data, c: data, d: data, e: data, f: data, g: data, h: data, i: data, j: data}"

    assert shape_problem(PayloadFormat.CUSTOM, few, ["message.received"]) is None
    problem = shape_problem(PayloadFormat.CUSTOM, many, ["message.received"])
    assert problem is not None
    assert problem.startswith("For the example of message.received: The payload shape gave a body of ")
    assert problem.endswith("bytes; the limit is 2000 bytes.")


@pytest.mark.parametrize("payload_format", [PayloadFormat.STANDARD, PayloadFormat.HEYMARKET, PayloadFormat.HEYY])
def test_a_shape_given_for_a_format_that_is_not_custom_is_a_problem(payload_format):
    assert (
        shape_problem(payload_format, "{a: data}", ["*"])
        == "Only a custom payload format takes a shape; leave it empty."
    )
    assert shape_problem(payload_format, "", ["*"]) is None


@pytest.mark.parametrize("expression", ["", "   "])
def test_a_custom_format_needs_a_shape(expression):
    problem = shape_problem(PayloadFormat.CUSTOM, expression, ["*"])

    assert problem is not None and "needs a JMESPath expression" in problem


def test_the_shape_is_checked_against_the_examples_of_the_subscribed_types_only():
    expression = "data.contact && {contact: data.contact}"  # message and chat examples have a contact

    assert shape_problem(PayloadFormat.CUSTOM, expression, ["message.received", "chat.opened"]) is None
    assert shape_problem(PayloadFormat.CUSTOM, expression, ["contact.created"]) == (
        "For the example of contact.created: The payload shape gave null, not a JSON object."
    )
    problem = shape_problem(PayloadFormat.CUSTOM, expression, ["*"])
    assert problem is not None and problem.endswith("The payload shape gave null, not a JSON object.")


# --- which types a Heymarket endpoint takes ----------------------------------------------------------------


@pytest.mark.django_db
def test_a_heymarket_endpoint_on_every_type_receives_only_heymarket_types(tenant):
    from deliveries.models import Delivery
    from subscriptions.services import create_endpoint
    from webhookhub import publish

    endpoint = create_endpoint(tenant=tenant, url="http://127.0.0.1:9/hook", payload_format="heymarket").endpoint
    taken = publish(tenant=tenant, type="message.received", data=EXAMPLES["message.received"])
    left = publish(tenant=tenant, type="chat.updated", data=EXAMPLES["chat.updated"])

    assert Delivery.objects.filter(event=taken, endpoint=endpoint).count() == 1
    assert not Delivery.objects.filter(event=left).exists()  # Heymarket has no chat_updated for its receivers


@pytest.mark.django_db
def test_a_heymarket_endpoint_refuses_a_type_heymarket_does_not_have(tenant):
    from django.core.exceptions import ValidationError

    from subscriptions.models import Endpoint
    from subscriptions.services import create_endpoint

    with pytest.raises(ValidationError) as refused:
        create_endpoint(
            tenant=tenant,
            url="https://example.com/hook",
            event_types=["message.received", "chat.updated"],
            payload_format="heymarket",
        )

    assert "chat.updated" in refused.value.message_dict["event_types"][0]
    assert not Endpoint.objects.exists()


def test_customertext_timestamps_are_whole_seconds_as_its_guide_writes_them():
    envelope = example_envelope("contact.created", CONTACT) | {"timestamp": "2026-04-25T14:30:00.123456Z"}

    body = json.loads(Shape(PayloadFormat.CUSTOMERTEXT).render(envelope))

    assert body["timestamp"] == "2026-04-25T14:30:00Z"


@pytest.mark.parametrize("number", ["1e999", "nan"])
def test_a_number_a_shape_function_cannot_take_is_a_shape_error_not_a_crash(number):
    shape = Shape(PayloadFormat.CUSTOM, expression="{n: ceil(to_number(data.text))}")

    with pytest.raises(ShapeError, match="failed on this event"):
        shape.render(example_envelope("message.received", {"text": number}))


def test_a_literal_a_shape_function_cannot_take_is_refused_at_save():
    assert "failed" in shape_problem(PayloadFormat.CUSTOM, "{n: ceil(`1e999`)}", ["message.received"])


@pytest.mark.django_db
def test_a_filter_that_allows_no_value_is_refused(tenant):
    from django.core.exceptions import ValidationError

    from subscriptions.models import Endpoint
    from subscriptions.services import create_endpoint

    with pytest.raises(ValidationError) as refused:
        create_endpoint(tenant=tenant, url="http://127.0.0.1:9/hook", filter={"direction": []})

    assert "direction" in refused.value.message_dict["filter"][0]
    assert not Endpoint.objects.exists()
