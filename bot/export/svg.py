"""The visual timeline, drawn server-side as SVG: pure functions, no JavaScript.

Phases (open → acknowledged → mitigated → resolved) are coloured bands along a
time axis; pages, rollbacks, notes and changes are marks in lanes below. Marks
that fall on the same pixel of the same lane are merged (their tooltip gives
the count), so the drawing stays small for a timeline of any length: feed the
marks one by one into :class:`MarkBuckets`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from xml.sax.saxutils import escape
from zoneinfo import ZoneInfo

from bot.clock import utc

WIDTH = 960
HEIGHT = 190
LEFT, RIGHT = 104, 24  # the left gutter holds the lane titles
BAND_TOP, BAND_HEIGHT = 34, 30
AXIS_Y = 164
LANES = {"page": 86, "page-failed": 86, "rollback": 106, "note": 126, "change": 146}
LANE_TITLES = {86: "Pages", 106: "Rollbacks", 126: "Notes", 146: "Changes"}
LANE_TITLE_COLOUR = "#334155"  # 10:1 against the white background
PHASE_COLOURS = {"open": "#dc2626", "acknowledged": "#f59e0b", "mitigated": "#eab308",
                 "resolved": "#16a34a"}
MARK_COLOURS = {"page": "#2563eb", "page-failed": "#dc2626", "rollback": "#7c3aed",
                "note": "#475569", "change": "#0f766e"}
_STEPS = [timedelta(seconds=s) for s in (
    10, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800,
    1209600, 2592000)]


@dataclass(frozen=True)
class Scale:
    start: datetime
    end: datetime
    width: int = WIDTH

    @classmethod
    def covering(cls, *moments: datetime | None, width: int = WIDTH) -> Scale:
        known = [utc(m) for m in moments if m is not None]
        start, end = min(known), max(known)
        if end - start < timedelta(minutes=1):
            end = start + timedelta(minutes=1)
        # A little room on each side so that marks at the ends stay visible.
        pad = (end - start) * 0.02
        return cls(start - pad, end + pad, width)

    @property
    def span(self) -> float:
        return (self.end - self.start).total_seconds()

    def x(self, when: datetime) -> float:
        inner = self.width - LEFT - RIGHT
        ratio = (utc(when) - self.start).total_seconds() / self.span
        return LEFT + max(0.0, min(1.0, ratio)) * inner


@dataclass(frozen=True)
class Phase:
    name: str
    start: datetime
    end: datetime | None  # None: the phase is the current one (drawn to "now")


def phases(*, opened_at: datetime, acknowledged_at: datetime | None,
           mitigated_at: datetime | None, resolved_at: datetime | None) -> list[Phase]:
    """Consecutive phases from the incident's timestamps (a skipped phase is left out)."""
    points = [("open", opened_at), ("acknowledged", acknowledged_at),
              ("mitigated", mitigated_at), ("resolved", resolved_at)]
    present = [(name, utc(when)) for name, when in points if when is not None]
    found = []
    for index, (name, start) in enumerate(present):
        end = present[index + 1][1] if index + 1 < len(present) else None
        if end is not None and end < start:
            end = start
        found.append(Phase(name, start, end))
    return found


@dataclass
class _Bucket:
    cls: str
    x: float
    when: datetime
    label: str
    count: int = 1


@dataclass
class MarkBuckets:
    """Marks merged per lane and pixel; add any number of them."""

    scale: Scale
    zone: ZoneInfo
    buckets: dict[tuple[int, int], _Bucket] = field(default_factory=dict)
    total: int = 0
    per_lane: dict[int, int] = field(default_factory=dict)  # events drawn in each lane

    def _key(self, when: datetime, cls: str) -> tuple[int, int] | None:
        lane = LANES.get(cls)
        if lane is None:
            return None
        return lane, int(self.scale.x(when) // 3)  # 3 px per bucket

    def is_new(self, when: datetime, cls: str) -> bool:
        """Whether this mark would start a bucket (only then is its label shown)."""
        key = self._key(when, cls)
        return key is not None and key not in self.buckets

    def add(self, when: datetime, cls: str, label: str) -> None:
        key = self._key(when, cls)
        if key is None:
            return
        self.total += 1
        self.per_lane[key[0]] = self.per_lane.get(key[0], 0) + 1
        x = self.scale.x(when)
        bucket = self.buckets.get(key)
        if bucket is None:
            self.buckets[key] = _Bucket(cls, x, utc(when), label[:120])
        else:
            bucket.count += 1
            if cls == "page-failed":  # a failure stays visible when merged with successes
                bucket.cls = cls


def _label_format(step: timedelta, *, with_date: bool) -> str:
    """Tick labels as precise as the step between ticks, so that no two read the same."""
    if step >= timedelta(days=1):
        return "%b %d"
    clock = "%H:%M:%S" if step < timedelta(minutes=1) else "%H:%M"
    return f"%b %d {clock}" if with_date else clock


def _both(when: datetime, zone: ZoneInfo) -> str:
    moment = utc(when)
    local = moment.astimezone(zone)
    text = f"{moment:%Y-%m-%d %H:%M:%S} UTC"
    if zone.key not in ("UTC", "Etc/UTC"):
        text += f" / {local:%Y-%m-%d %H:%M:%S} {local.tzname()}"
    return text


def tick_step(scale: Scale, *, most: int = 8) -> timedelta:
    return next((s for s in _STEPS if scale.span / s.total_seconds() <= most), _STEPS[-1])


def ticks(scale: Scale, zone: ZoneInfo, *, most: int = 8) -> list[datetime]:
    """Round instants in the display zone along the axis (at most ``most``)."""
    step = tick_step(scale, most=most)
    seconds = int(step.total_seconds())
    local_start = scale.start.astimezone(zone)
    naive = local_start.replace(tzinfo=None)
    base = datetime(naive.year, naive.month, naive.day)
    offset = 0 if seconds >= 86400 else (int((naive - base).total_seconds()) // seconds + 1) * seconds
    found = []
    current = base + timedelta(seconds=offset)
    while len(found) < most * 2:
        moment = utc(current.replace(tzinfo=zone))
        if moment > scale.end:
            break
        if moment >= scale.start:
            found.append(moment)
        current += step
    return found


def _mark_shape(bucket: _Bucket, lane: int, zone: ZoneInfo) -> str:
    colour = MARK_COLOURS[bucket.cls]
    x = round(bucket.x, 1)
    tip = f"{bucket.label} — {_both(bucket.when, zone)}"
    if bucket.count > 1:
        tip = f"{bucket.count} events from {_both(bucket.when, zone)}, first: {bucket.label}"
    title = f"<title>{escape(tip)}</title>"
    css = f'class="mark mark-{bucket.cls}" data-count="{bucket.count}"'
    if bucket.cls == "rollback":
        points = f"{x},{lane - 6} {x + 6},{lane} {x},{lane + 6} {x - 6},{lane}"
        return f'<polygon {css} points="{points}" fill="{colour}">{title}</polygon>'
    if bucket.cls in ("page", "page-failed"):
        return f'<circle {css} cx="{x}" cy="{lane}" r="5" fill="{colour}">{title}</circle>'
    if bucket.cls == "change":
        points = f"{x},{lane - 5} {x + 5},{lane + 4} {x - 5},{lane + 4}"
        return f'<polygon {css} points="{points}" fill="{colour}">{title}</polygon>'
    return (f'<rect {css} x="{x - 2}" y="{lane - 6}" width="4" height="12" '
            f'fill="{colour}">{title}</rect>')


def render(*, scale: Scale, phase_list: list[Phase], marks: MarkBuckets, zone: ZoneInfo,
           now: datetime, title: str, event_count: int) -> str:
    """The drawing; ``event_count`` is the timeline's (the table's) number of events."""
    width = scale.width
    parts = [
        (f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" class="timeline" role="img" '
         f'viewBox="0 0 {width} {HEIGHT}" width="100%" preserveAspectRatio="xMinYMin meet" '
         f'aria-labelledby="timeline-title" font-family="system-ui, sans-serif" font-size="11">'),
        f'<title id="timeline-title">{escape(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{HEIGHT}" fill="#ffffff"/>',
    ]
    for lane, lane_title in LANE_TITLES.items():
        parts.append(f'<line x1="{LEFT}" y1="{lane}" x2="{width - RIGHT}" y2="{lane}" '
                     f'stroke="#e2e8f0" stroke-dasharray="2 3"/>')
        parts.append(f'<text class="lane-title" x="{LEFT - 8}" y="{lane + 4}" text-anchor="end" '
                     f'fill="{LANE_TITLE_COLOUR}" font-size="11">{lane_title} ({marks.per_lane.get(lane, 0):,})'
                     f'</text>')
    for phase in phase_list:
        start = scale.x(phase.start)
        end = scale.x(phase.end or now) if phase.name != "resolved" else start
        colour = PHASE_COLOURS[phase.name]
        span = f"{_both(phase.start, zone)}"
        if phase.name == "resolved":
            parts.append(
                f'<g class="phase phase-resolved" data-phase="resolved">'
                f'<line x1="{start:.1f}" y1="{BAND_TOP - 6}" x2="{start:.1f}" '
                f'y2="{AXIS_Y}" stroke="{colour}" stroke-width="2"/>'
                f'<text x="{start:.1f}" y="{BAND_TOP - 10}" text-anchor="end" fill="{colour}">'
                f'resolved</text><title>resolved at {escape(span)}</title></g>')
            continue
        rect_width = max(2.0, end - start)
        until = f" until {_both(phase.end, zone)}" if phase.end else " (ongoing)"
        parts.append(
            f'<g class="phase phase-{phase.name}" data-phase="{phase.name}">'
            f'<rect x="{start:.1f}" y="{BAND_TOP}" width="{rect_width:.1f}" height="{BAND_HEIGHT}" '
            f'fill="{colour}" fill-opacity="0.85"/>'
            f'<title>{escape(phase.name)} from {escape(span)}{escape(until)}</title>'
            + (f'<text x="{start + 4:.1f}" y="{BAND_TOP + 19}" fill="#ffffff">{phase.name}</text>'
               if rect_width > 8 * len(phase.name) else "")
            + "</g>")
    for (lane, _), bucket in sorted(marks.buckets.items()):
        parts.append(_mark_shape(bucket, lane, zone))
    parts.append(f'<line x1="{LEFT}" y1="{AXIS_Y}" x2="{width - RIGHT}" y2="{AXIS_Y}" '
                 f'stroke="#334155"/>')
    with_date = scale.span > 86400 or (scale.start.astimezone(zone).date()
                                       != scale.end.astimezone(zone).date())
    label_format = _label_format(tick_step(scale), with_date=with_date)
    previous = None
    for tick in ticks(scale, zone):
        label = utc(tick).astimezone(zone).strftime(label_format)
        if label == previous:
            continue
        previous = label
        x = scale.x(tick)
        parts.append(f'<line x1="{x:.1f}" y1="{AXIS_Y}" x2="{x:.1f}" y2="{AXIS_Y + 4}" '
                     f'stroke="#334155"/>')
        parts.append(f'<text class="tick" x="{x:.1f}" y="{AXIS_Y + 15}" text-anchor="middle" '
                     f'fill="#334155">{escape(label)}<title>{escape(_both(tick, zone))}</title></text>')
    zone_name = scale.start.astimezone(zone).tzname() or zone.key
    unmarked = max(0, event_count - marks.total)
    parts.append(f'<text class="summary" x="8" y="14" fill="#0f172a"><tspan font-weight="600">'
                 f'{event_count:,} event{"s" if event_count != 1 else ""}</tspan><tspan fill="#475569">: '
                 f'{marks.total:,} marked in the lanes, {unmarked:,} state change{"s" if unmarked != 1 else ""} '
                 f'and set-up in the bands · axis in {escape(zone.key)} ({escape(zone_name)}); hover for UTC'
                 f'</tspan></text>')
    parts.append("</svg>")
    return "\n".join(parts)

