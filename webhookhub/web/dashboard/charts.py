"""Charts as inline SVG drawn on the server: no JavaScript, no CDN, readable at any width."""

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from webhookhub.web.dashboard.queries import Bar

WIDTH, HEIGHT, TOP, BOTTOM, LEFT = 600, 200, 12, 24, 52
OUTCOME_COLOURS = (
    ("successes", "#2e7d32", "succeeded"),
    ("retries", "#f9a825", "retried"),
    ("failures", "#c62828", "failed"),
)
LATENCY_LINES = ((0.50, "#1565c0", "p50"), (0.95, "#6a1b9a", "p95"), (0.99, "#ad1457", "p99"))


def _time_label(bar: Bar, long: bool) -> str:
    return f"{bar.start:%m-%d %H:%M}" if long else f"{bar.start:%H:%M}"


def _frame(bars: list[Bar], top_value: str, unit: str, body: SafeString, long_labels: bool) -> SafeString:
    plot_h = HEIGHT - TOP - BOTTOM
    labels = [bars[0], bars[len(bars) // 2], bars[-1]] if bars else []
    anchors = ["start", "middle", "end"]
    xs = [LEFT, LEFT + (WIDTH - LEFT) / 2, WIDTH]
    axis = format_html_join(
        "",
        '<text x="{}" y="{}" text-anchor="{}" class="axis">{}</text>',
        (
            (x, HEIGHT - 6, anchor, _time_label(bar, long_labels))
            for x, anchor, bar in zip(xs, anchors, labels, strict=False)
        ),
    )
    return format_html(
        '<svg viewBox="0 0 {w} {h}" role="img" class="chart">'
        '<line x1="{l}" y1="{top}" x2="{w}" y2="{top}" class="grid"/>'
        '<line x1="{l}" y1="{base}" x2="{w}" y2="{base}" class="grid"/>'
        '<text x="{lx}" y="{ty}" text-anchor="end" class="axis">{top_value}</text>'
        '<text x="{lx}" y="{base}" text-anchor="end" class="axis">0</text>'
        '<text transform="translate(12,{mid}) rotate(-90)" text-anchor="middle" class="axis">{unit}</text>'
        "{body}{axis}</svg>",
        w=WIDTH,
        h=HEIGHT,
        l=LEFT,
        top=TOP,
        base=TOP + plot_h,
        lx=LEFT - 4,
        ty=TOP + 4,
        mid=TOP + plot_h / 2,
        top_value=top_value,
        unit=unit,
        body=body,
        axis=axis,
    )


def outcome_bars(bars: list[Bar], long_labels: bool = False) -> SafeString:
    """Stacked bars of attempts per step: succeeded, retried, failed."""
    peak = max((bar.counts.attempts for bar in bars), default=0) or 1
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    shapes = []
    for i, bar in enumerate(bars):
        x = LEFT + i * slot + slot * 0.1
        y = TOP + plot_h
        tip = ", ".join(f"{getattr(bar.counts, name)} {label}" for name, _, label in OUTCOME_COLOURS)
        for name, colour, _ in OUTCOME_COLOURS:
            value = getattr(bar.counts, name)
            if not value:
                continue
            height = plot_h * value / peak
            y -= height
            shapes.append(
                format_html(
                    '<rect x="{}" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>',
                    f"{x:.1f}",
                    f"{y:.1f}",
                    f"{slot * 0.8:.1f}",
                    f"{height:.1f}",
                    colour,
                    _time_label(bar, True),
                    tip,
                )
            )
    return _frame(bars, str(peak), "attempts", mark_safe("".join(shapes)), long_labels)  # noqa: S308 (built by format_html)


def latency_lines(bars: list[Bar], long_labels: bool = False) -> SafeString:
    """p50, p95 and p99 latency per step, from the rollups' histograms."""
    values = {q: [bar.counts.percentile(q) for bar in bars] for q, _, _ in LATENCY_LINES}
    peak = max((v for line in values.values() for v in line if v is not None), default=0) or 1
    plot_h = HEIGHT - TOP - BOTTOM
    slot = (WIDTH - LEFT) / max(len(bars), 1)
    lines = []
    for q, colour, label in LATENCY_LINES:
        points = [
            (f"{LEFT + (i + 0.5) * slot:.1f}", f"{TOP + plot_h - plot_h * v / peak:.1f}")
            for i, v in enumerate(values[q])
            if v is not None
        ]
        if len(points) > 1:
            lines.append(
                format_html(
                    '<polyline points="{}" fill="none" stroke="{}" stroke-width="2"><title>{}</title></polyline>',
                    " ".join(f"{x},{y}" for x, y in points),
                    colour,
                    label,
                )
            )
        # A dot per point too: a step with data between empty ones is otherwise invisible.
        lines.extend(
            format_html('<circle cx="{}" cy="{}" r="2.5" fill="{}"><title>{}</title></circle>', x, y, colour, label)
            for x, y in points
        )
    return _frame(bars, f"{peak} ms", "latency", mark_safe("".join(lines)), long_labels)  # noqa: S308


def legend(kind: str) -> SafeString:
    items = OUTCOME_COLOURS if kind == "outcomes" else [(label, colour, label) for _, colour, label in LATENCY_LINES]
    return format_html_join(
        " ",
        '<span class="legend"><span class="swatch" style="background:{}"></span>{}</span>',
        ((colour, label) for _, colour, label in items),
    )
