"""Small formatting filters for the dashboard templates."""

from django import template
from django.utils import timezone
from django.utils.timesince import timesince

register = template.Library()


@register.filter
def percentile(counts, fraction) -> int | None:
    """``{{ counts|percentile:0.95 }}``: the latency percentile of a ``deliveries.numbers.stats.Counts``, in ms."""
    return counts.percentile(float(fraction))


@register.filter
def percent(rate) -> str:
    """0.9731 -> "97.3%"; None -> "–". Short of 1 never reads "100": 0.9996 -> "99.9%"."""
    if rate is None:
        return "–"
    return f"{min(100 * rate, 99.9):.1f}%" if rate < 1 else "100%"


@register.filter
def ago(moment) -> str:
    """How long ago: "just now" under a minute (not "0 minutes ago"), else "3 minutes ago"."""
    if moment is None:
        return ""
    if (timezone.now() - moment).total_seconds() < 60:
        return "just now"
    return f"{timesince(moment)} ago"
