"""Small inline SVG charts: no image round trip, no plotting library on the request path."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

PALETTE = ("#3b6fd8", "#d8663b", "#2e9e5b", "#a04bd1", "#c9a227", "#5a6b8c", "#d13b7a")


def _fmt(value: float) -> str:
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def line_chart(series: Mapping[str, Sequence[float]], *, width: int = 560, height: int = 180,
               x_labels: Sequence[str] = (), y_label: str = "") -> str:
    """Lines of equal-spaced points, one per series, with a legend; empty series are dropped."""
    series = {k: list(v) for k, v in series.items() if len(v)}
    if not series:
        return "<p class='muted'>no data yet</p>"
    pad_l, pad_r, pad_t, pad_b = 44, 10, 10, 34
    n = max(len(v) for v in series.values())
    lo = min(min(v) for v in series.values())
    hi = max(max(v) for v in series.values())
    lo = min(lo, 0.0)
    hi = hi if hi > lo else lo + 1.0
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def xy(i: int, v: float) -> str:
        x = pad_l + (w * i / (n - 1) if n > 1 else w / 2)
        y = pad_t + h - h * (v - lo) / (hi - lo)
        return f"{x:.1f},{y:.1f}"

    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>",
             f"<line x1='{pad_l}' y1='{pad_t + h}' x2='{pad_l + w}' y2='{pad_t + h}' stroke='#99a'/>",
             f"<line x1='{pad_l}' y1='{pad_t}' x2='{pad_l}' y2='{pad_t + h}' stroke='#99a'/>",
             f"<text x='{pad_l - 4}' y='{pad_t + 8}' font-size='10' text-anchor='end'>{_fmt(hi)}</text>",
             f"<text x='{pad_l - 4}' y='{pad_t + h}' font-size='10' text-anchor='end'>{_fmt(lo)}</text>"]
    if y_label:
        parts.append(f"<text x='{pad_l + 4}' y='{pad_t + 8}' font-size='10' fill='#6b7385'>{escape(y_label)}</text>")
    if x_labels:
        for i in sorted({0, len(x_labels) - 1}):
            anchor = "start" if i == 0 else "end"
            parts.append(f"<text x='{xy(i, lo).split(',')[0]}' y='{height - 20}' font-size='10' "
                         f"text-anchor='{anchor}'>{escape(x_labels[i])}</text>")
    for k, (name, values) in enumerate(series.items()):
        colour = PALETTE[k % len(PALETTE)]
        points = " ".join(xy(i, v) for i, v in enumerate(values))
        if len(values) == 1:
            x, y = xy(0, values[0]).split(",")
            parts.append(f"<circle cx='{x}' cy='{y}' r='3' fill='{colour}'/>")
        else:
            parts.append(f"<polyline fill='none' stroke='{colour}' stroke-width='1.6' points='{points}'/>")
        lx = pad_l + k * 110
        parts.append(f"<rect x='{lx}' y='{height - 11}' width='10' height='8' fill='{colour}'/>"
                     f"<text x='{lx + 14}' y='{height - 3}' font-size='10'>{escape(name[:16])}</text>")
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(values: Mapping[str, float], *, width: int = 460, bar_height: int = 16) -> str:
    """Horizontal bars, largest first."""
    if not values:
        return "<p class='muted'>no data yet</p>"
    items = sorted(values.items(), key=lambda kv: -kv[1])
    top = max(v for _, v in items) or 1.0
    label_w, height = 130, bar_height * len(items) + 4
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"]
    for i, (name, v) in enumerate(items):
        y = i * bar_height + 2
        bw = (width - label_w - 60) * v / top
        parts.append(f"<text x='{label_w - 6}' y='{y + bar_height - 5}' font-size='11' text-anchor='end'>"
                     f"{escape(str(name)[:20])}</text><rect x='{label_w}' y='{y}' width='{bw:.1f}' "
                     f"height='{bar_height - 3}' fill='{PALETTE[0]}'/><text x='{label_w + bw + 4:.1f}' "
                     f"y='{y + bar_height - 5}' font-size='11'>{_fmt(v)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def interval_chart(rows: Sequence[tuple[str, float, float, float]], *, width: int = 460, row_height: int = 22) -> str:
    """(name, estimate, low, high) on a shared 0..1 axis: a rate with its 95% interval per row."""
    if not rows:
        return "<p class='muted'>no data yet</p>"
    label_w = 130
    w = width - label_w - 50
    height = row_height * len(rows) + 16
    parts = [f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img'>"]
    for i, (name, p, low, high) in enumerate(rows):
        y = i * row_height + row_height / 2

        def x(v: float) -> float:
            return label_w + w * max(0.0, min(1.0, v))

        parts.append(f"<text x='{label_w - 6}' y='{y + 4}' font-size='11' text-anchor='end'>{escape(name[:20])}</text>"
                     f"<line x1='{x(low):.1f}' y1='{y}' x2='{x(high):.1f}' y2='{y}' stroke='{PALETTE[1]}' "
                     f"stroke-width='3'/><circle cx='{x(p):.1f}' cy='{y}' r='4' fill='{PALETTE[0]}'/>"
                     f"<text x='{x(high) + 5:.1f}' y='{y + 4}' font-size='10'>{p:.3f}</text>")
    parts.append(f"<text x='{label_w}' y='{height - 2}' font-size='10'>0</text>"
                 f"<text x='{label_w + w}' y='{height - 2}' font-size='10' text-anchor='end'>1</text></svg>")
    return "".join(parts)
