"""The delivery-log dashboard: overview, log, delivery detail, endpoint detail and preview, and the event-type
catalog, for tenant admins."""

from datetime import timedelta

from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.timesince import timesince
from django.views.decorators.http import require_POST

from deliveries.models import Delivery, DeliveryStatus
from deliveries.numbers.windows import DEFAULT_WINDOW, WINDOWS, Window
from deliveries.selectors import held_back_by, scheduling_state
from deliveries.services.actions import cancel_pending, replay, resend, send_test_event
from deliveries.services.enabling import enable_after_test
from events.exceptions import PublishError
from ground.conf import setting
from subscriptions.models import Endpoint, EndpointHealth, PayloadFormat
from subscriptions.payloads import heymarket_webhook_id, masked_token
from subscriptions.services import ADMIN_DISABLED_REASON, disable_endpoint
from subscriptions.warnings import outlook as disable_outlook
from webhookhub.web.dashboard import charts, queries
from webhookhub.web.dashboard.access import ScopedRequest, tenant_admin_required
from webhookhub.web.dashboard.catalog import catalog
from webhookhub.web.dashboard.forms import LogFilterForm, ReplayForm
from webhookhub.web.payload_pages import preview_context, shown_body

_MAX_BIGINT = 2**63 - 1


def _window(request: ScopedRequest) -> Window:
    key = request.GET.get("window") or DEFAULT_WINDOW
    if key not in WINDOWS:
        messages.warning(request, f"Unknown window {key!r}: showing {WINDOWS[DEFAULT_WINDOW].label}.")
        key = DEFAULT_WINDOW
    return WINDOWS[key]


def _charts(bars: list[queries.Bar], window: Window) -> dict:
    long_labels = window.length > timedelta(hours=24)
    return {
        "outcome_chart": charts.outcome_bars(bars, long_labels),
        "latency_chart": charts.latency_lines(bars, long_labels),
        "outcome_legend": charts.legend("outcomes"),
        "latency_legend": charts.legend("latency"),
    }


def _blocked_after() -> str:
    """When an ordering key counts as blocked, in words ("1 hour")."""
    now = timezone.now()
    return timesince(now - timedelta(seconds=setting("ORDERING_BLOCKED_AFTER_SECONDS")), now)


def _page(request: ScopedRequest, template: str, nav: str = "", **context) -> HttpResponse:
    context = {"scope": request.scope, "windows": WINDOWS.values(), "nav": nav, **context}
    return render(request, template, context)


@tenant_admin_required
def overview(request: ScopedRequest) -> HttpResponse:
    window = _window(request)
    summary = queries.overview(request.scope.tenant_ids, window)
    return _page(
        request,
        "dashboard/overview.html",
        nav="overview",
        window=window,
        summary=summary,
        blocked_after=_blocked_after(),
        **_charts(summary.bars, window),
    )


def _endpoints_in_view(request: ScopedRequest) -> list[Endpoint]:
    return list(queries.endpoints_in_view(request.scope.tenant_ids).only("id", "name", "url", "tenant"))


@tenant_admin_required
def delivery_log(request: ScopedRequest) -> HttpResponse:
    endpoints = _endpoints_in_view(request)
    form = LogFilterForm(request.GET, endpoints=endpoints)
    page = None
    if form.is_valid():
        data = form.cleaned_data
        if data["endpoint"]:
            endpoint_ids = [data["endpoint"]]
        elif request.scope.tenant_ids is None:
            endpoint_ids = None  # every tenant: no need to list every endpoint
        else:
            endpoint_ids = [endpoint.pk for endpoint in endpoints]
        filters = queries.LogFilters(
            endpoint_ids=endpoint_ids,
            event_type=data["event_type"],
            status=data["status"],
            since=data["since"],
            until=data["until"],
            event_id=data["event"].strip(),
            ordering_key=data["ordering_key"],
            text=data["q"].strip(),
        )
        page = queries.delivery_log(filters, before=_cursor(request, "before"), after=_cursor(request, "after"))
    return _page(
        request,
        "dashboard/deliveries.html",
        nav="deliveries",
        form=form,
        page=page,
        search_scan_limit=f"{queries.SEARCH_SCAN_LIMIT:,}",
        retention_days=setting("RETENTION_DAYS"),
    )


def _cursor(request: ScopedRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if queries.DELIVERY_ID.fullmatch(value) else None


def _delivery(request: ScopedRequest, pk: int) -> Delivery:
    if pk > _MAX_BIGINT:
        raise Http404("No such delivery.")
    deliveries = Delivery.objects.select_related("event", "payload", "endpoint__tenant")
    if not request.user.is_superuser:
        deliveries = deliveries.filter(endpoint__tenant__in=request.scope.tenants)
    return get_object_or_404(deliveries, pk=pk)


@tenant_admin_required
def delivery_detail(request: ScopedRequest, pk: int) -> HttpResponse:
    delivery = _delivery(request, pk)
    attempts = list(delivery.attempts.order_by("-number"))
    if attempts and attempts[0].number > delivery.attempt_count:
        # An attempt was recorded between the two reads; its new state came in the same transaction.
        delivery.refresh_from_db()
    now = timezone.now()
    # Refresh while a send is due about now or under way, so a resend's attempt shows up by itself
    # (for a minute: with no worker running it stops asking).
    due = delivery.next_attempt_at
    sending = delivery.status == DeliveryStatus.PENDING and (
        (delivery.lease_until is not None and delivery.lease_until > now)
        or (due is not None and now - timedelta(seconds=60) <= due <= now + timedelta(seconds=5))
    )
    return _page(
        request,
        "dashboard/delivery.html",
        delivery=delivery,
        body=shown_body(delivery),
        attempts=attempts,
        refresh=sending,
        cancellable=delivery.status == DeliveryStatus.PENDING,
        waiting_behind=held_back_by(delivery, now=now),
    )


@require_POST
@tenant_admin_required
def delivery_resend(request: ScopedRequest, pk: int) -> HttpResponse:
    delivery = _delivery(request, pk)
    lease = delivery.lease_until
    if delivery.status == DeliveryStatus.PENDING and lease is not None and lease > timezone.now():
        messages.info(request, "A worker is sending this delivery right now; it was left to finish.")
    else:
        resend(delivery)
        messages.success(request, "The delivery will be sent again now.")
    return _back_to_delivery(request, delivery)


@require_POST
@tenant_admin_required
def delivery_cancel(request: ScopedRequest, pk: int) -> HttpResponse:
    delivery = _delivery(request, pk)
    if cancel_pending(Delivery.objects.filter(pk=delivery.pk)):
        messages.success(request, "Cancelled: no further attempts will be made.")
    else:
        messages.error(request, "Not cancelled: the delivery is not pending, or a worker is sending it right now.")
    return _back_to_delivery(request, delivery)


def _back_to_delivery(request: ScopedRequest, delivery: Delivery) -> HttpResponse:
    return HttpResponseRedirect(reverse("dashboard:delivery", args=[delivery.pk]))


def _endpoint(request: ScopedRequest, pk: str) -> Endpoint:
    if "\x00" in pk or len(pk) > 40:
        raise Http404("No such endpoint.")
    endpoints = Endpoint.objects.select_related("tenant")
    if not request.user.is_superuser:
        endpoints = endpoints.filter(tenant__in=request.scope.tenants)
    return get_object_or_404(endpoints, pk=pk)


@tenant_admin_required
def endpoint_detail(request: ScopedRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    now = timezone.now()
    replay_form = ReplayForm(initial=ReplayForm.initial_for(now - timedelta(days=1), now))
    return _endpoint_page(request, endpoint, replay_form)


def _endpoint_page(
    request: ScopedRequest, endpoint: Endpoint, replay_form: ReplayForm, preview: int | None = None
) -> HttpResponse:
    window = _window(request)
    now = timezone.now()
    bars = queries.series([endpoint.tenant_id], window, now, endpoint_id=endpoint.pk)
    totals = queries.Counts()
    for bar in bars:
        totals.merge(bar.counts)
    health = EndpointHealth.objects.filter(endpoint=endpoint).first()
    return _page(
        request,
        "dashboard/endpoint.html",
        endpoint=endpoint,
        window=window,
        totals=totals,
        health=health,
        disable_outlook=disable_outlook(endpoint, health, now=now),  # failing: when it will be disabled
        scheduling=scheduling_state(endpoint, now=now),
        blocked_keys=queries.blocked_keys([endpoint.tenant_id], [endpoint], now),
        blocked_after=_blocked_after(),
        failures=queries.recent_failures(endpoint),
        security=queries.security(endpoint, now),
        replay_form=replay_form,
        preview=preview,
        **_payload(endpoint),
        **_charts(bars, window),
    )


def _payload(endpoint: Endpoint) -> dict:
    """A Heymarket endpoint's webhook id and token mask (the token itself is shown once, in the admin)."""
    if endpoint.payload_format != PayloadFormat.HEYMARKET:
        return {}
    return {"heymarket_webhook_id": heymarket_webhook_id(endpoint.pk), "token_mask": masked_token(endpoint)}


@tenant_admin_required
def endpoint_preview(request: ScopedRequest, pk: str) -> HttpResponse:
    """A dry run on the latest events, under the saved settings or ones to try; nothing is sent or saved."""
    endpoint = _endpoint(request, pk)
    return _page(
        request, "dashboard/endpoint_preview.html", endpoint=endpoint, **preview_context(endpoint, request.GET)
    )


@tenant_admin_required
def event_types(request: ScopedRequest) -> HttpResponse:
    return _page(request, "dashboard/event_types.html", nav="event_types", entries=catalog())


@require_POST
@tenant_admin_required
def endpoint_test(request: ScopedRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    try:
        delivery = send_test_event(endpoint=endpoint)
    except PublishError as exc:
        messages.error(request, f"No test event sent: {exc}")
        return HttpResponseRedirect(reverse("dashboard:endpoint", args=[endpoint.pk]))
    messages.success(request, "Test event sent: this page shows the attempt when the worker has made it.")
    return HttpResponseRedirect(reverse("dashboard:delivery", args=[delivery.pk]))


@require_POST
@tenant_admin_required
def endpoint_toggle(request: ScopedRequest, pk: str) -> HttpResponse:
    endpoint = _endpoint(request, pk)
    if request.POST.get("enabled") == "1":
        _enable(request, endpoint, force=request.POST.get("force") == "1")
    elif request.POST.get("enabled") == "0":
        disable_endpoint(endpoint=endpoint, reason=ADMIN_DISABLED_REASON, notify=False)
        messages.success(request, "Endpoint disabled: new events are no longer sent to it.")
    else:
        messages.error(request, "Say whether to enable (1) or disable (0) the endpoint.")
    return HttpResponseRedirect(reverse("dashboard:endpoint", args=[endpoint.pk]))


def _enable(request: ScopedRequest, endpoint: Endpoint, *, force: bool) -> None:
    """After a test event that got a 2xx (or forced, without one); the message says which, or why not."""
    if endpoint.enabled:
        messages.info(request, "Endpoint already enabled.")
        return
    result = enable_after_test(endpoint, force=force)
    if result.enabled:
        how = f"the test event got {result.answer}" if result.tested else "without a test (forced)"
        messages.success(request, f"Endpoint enabled: {how}.")
    else:
        messages.error(
            request,
            f"Not enabled: the test event failed ({result.answer}). The endpoint stays disabled; fix it and try "
            'again, or use "Enable without testing (force)".',
        )


@require_POST
@tenant_admin_required
def endpoint_replay(request: ScopedRequest, pk: str) -> HttpResponse:
    """First POST shows how many would be sent; the confirming POST sends them."""
    endpoint = _endpoint(request, pk)
    form = ReplayForm(request.POST)
    if not form.is_valid():
        return _endpoint_page(request, endpoint, form)
    data = form.cleaned_data
    arguments = {"endpoint": endpoint, "statuses": form.statuses, "since": data["since"], "until": data["until"]}
    if not data["confirm"]:
        confirming = ReplayForm(initial={**data, "confirm": True})
        return _endpoint_page(request, endpoint, confirming, preview=replay(**arguments, dry_run=True))
    count = replay(**arguments)
    messages.success(request, f"Replaying {count} delivery(ies) to this endpoint now.")
    return HttpResponseRedirect(reverse("dashboard:endpoint", args=[endpoint.pk]))
