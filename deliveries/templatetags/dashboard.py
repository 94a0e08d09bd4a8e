"""Small formatting filters for the dashboard templates."""

from django import template

register = template.Library()


@register.filter
def percentile(counts, fraction) -> int | None:
    """``{{ counts|percentile:0.95 }}``: the latency percentile of a ``queries.Counts``, in ms."""
    return counts.percentile(float(fraction))


@register.filter
def percent(rate) -> str:
    """0.9731 -> "97.3%"; None -> "–"."""
    if rate is None:
        return "–"
    return f"{100 * rate:.1f}%" if rate < 1 else "100%"
