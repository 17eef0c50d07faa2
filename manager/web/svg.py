"""Line plots as inline SVG, drawn on the server (pure): no JavaScript, no CDN, readable offline.

Every text that goes into the markup is escaped here; the result is safe to embed as is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

WIDTH, HEIGHT = 640, 180
PAD_LEFT, PAD_RIGHT, PAD_TOP, PAD_BOTTOM = 48, 12, 24, 28


@dataclass(frozen=True, slots=True)
class Series:
    name: str
    unit: str
    points: tuple[tuple[datetime, float], ...]


def _fmt(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 10 else f"{v:.1f}"


def line_plot(series: Series, *, lo: float | None = None, hi: float | None = None,
              width: int = WIDTH, height: int = HEIGHT) -> str:
    """One series over time; `lo`/`hi` fix the value axis (e.g. 0-100 for percentages)."""
    pts = sorted(series.points)
    title = f"{series.name} ({series.unit})" if series.unit else series.name
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot" role="img" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" data-series="{escape(series.name)}">'
            f'<title>{escape(title)}</title>'
            f'<text x="{PAD_LEFT}" y="16" class="plot-title">{escape(title)}</text>')
    if not pts:
        return head + f'<text x="{PAD_LEFT}" y="{height // 2}">no data</text></svg>'
    values = [v for _, v in pts]
    vmin = min(values) if lo is None else lo
    vmax = max(values) if hi is None else hi
    if vmax <= vmin:
        vmax = vmin + 1.0
    t0, t1 = pts[0][0].timestamp(), pts[-1][0].timestamp()
    span = (t1 - t0) or 1.0
    iw, ih = width - PAD_LEFT - PAD_RIGHT, height - PAD_TOP - PAD_BOTTOM

    def xy(t: datetime, v: float) -> tuple[float, float]:
        x = PAD_LEFT + (t.timestamp() - t0) / span * iw if t1 > t0 else PAD_LEFT + iw / 2
        y = PAD_TOP + (1 - (min(max(v, vmin), vmax) - vmin) / (vmax - vmin)) * ih
        return round(x, 1), round(y, 1)

    coords = [xy(t, v) for t, v in pts]
    path = " ".join(f"{x},{y}" for x, y in coords)
    axis = (f'<line x1="{PAD_LEFT}" y1="{PAD_TOP + ih}" x2="{PAD_LEFT + iw}" y2="{PAD_TOP + ih}" class="axis"/>'
            f'<line x1="{PAD_LEFT}" y1="{PAD_TOP}" x2="{PAD_LEFT}" y2="{PAD_TOP + ih}" class="axis"/>'
            f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + 4}" text-anchor="end">{_fmt(vmax)}</text>'
            f'<text x="{PAD_LEFT - 4}" y="{PAD_TOP + ih}" text-anchor="end">{_fmt(vmin)}</text>'
            f'<text x="{PAD_LEFT}" y="{height - 8}">{pts[0][0]:%Y-%m-%d}</text>'
            f'<text x="{PAD_LEFT + iw}" y="{height - 8}" text-anchor="end">{pts[-1][0]:%Y-%m-%d %H:%M}</text>')
    dots = "".join(f'<circle cx="{x}" cy="{y}" r="2"><title>{t:%Y-%m-%d %H:%M} {escape(_fmt(v))}</title></circle>'
                   for (x, y), (t, v) in zip(coords[-200:], pts[-200:]))
    return head + axis + f'<polyline points="{path}" class="line"/>' + dots + "</svg>"


def plots(series: Sequence[Series]) -> list[str]:
    """The plots of a host page; percentages on a fixed 0-100 axis."""
    return [line_plot(s, lo=0.0, hi=100.0) if s.unit == "%" else line_plot(s) for s in series]
