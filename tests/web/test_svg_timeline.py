"""The SVG timeline on the incident page, over HTTP: an axis whose labels never repeat, lane
titles people can read, and an event count that agrees with the table below it."""

from __future__ import annotations

import re
from datetime import timedelta

from tests.web.conftest import bearer, url

AXIS_LEFT = re.compile(r'<line x1="([\d.]+)" y1="164" x2="[\d.]+" y2="164"')


def _luminance(hex_colour: str) -> float:
    def channel(value: int) -> float:
        c = value / 255
        return c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


def _contrast_on_white(hex_colour: str) -> float:
    return 1.05 / (_luminance(hex_colour) + 0.05)


async def _short_incident(bed) -> None:
    """Two minutes from open to resolve, with notes, a severity change and pages between."""
    assert "INC-1 opened" in await bed.run_command("open P1 checkout is failing service:api")
    await bed.run_jobs()
    channel = bed.incident_channel(1).id
    for text in ("note pool at 100%", "ack", "sev P0", "note restarting api", "status back to normal",
                 "mitigated", "resolve pool raised"):
        bed.clock.advance(timedelta(seconds=15))
        assert await bed.run_command(text, channel=channel), text
        await bed.run_jobs()


async def test_the_svg_axis_lanes_and_count_read_right(web_bed):
    await _short_incident(web_bed)
    async with web_bed.http.get(url(web_bed, "/incidents/INC-1"), headers=bearer()) as resp:
        page = await resp.text()
    assert resp.status == 200
    drawing = page.split("<svg", 1)[1].split("</svg>", 1)[0]

    labels = re.findall(r'<text class="tick"[^>]*>([^<]+)<title>', drawing)
    assert len(labels) >= 3 and len(labels) == len(set(labels)), labels

    titles = re.findall(r'<text class="lane-title" x="([\d.]+)"[^>]*fill="(#[0-9a-f]{6})" font-size="(\d+)">'
                        r'([A-Za-z]+) \((\d+)\)</text>', drawing)
    assert [t[3] for t in titles] == ["Pages", "Rollbacks", "Notes", "Changes"], titles
    plot_left = min(float(x) for x in re.findall(r'class="mark [^"]*"[^>]* (?:cx|x|points)="([\d.]+)', drawing))
    axis_left = float(AXIS_LEFT.search(drawing).group(1))
    for x, colour, size, _name, _count in titles:
        assert int(size) >= 11 and _contrast_on_white(colour) >= 4.5  # WCAG AA for small text
        assert float(x) < axis_left <= plot_left  # in the gutter, left of every mark

    table_rows = page.count('<tr class="event ')
    count = int(re.search(r'<tspan font-weight="600">(\d+) events</tspan>', drawing).group(1))
    assert count == table_rows and f"{table_rows} events; page 1 of 1" in page
    marked = sum(int(t[4]) for t in titles)
    assert f": {marked} marked in the lanes, {count - marked} state changes and set-up" in drawing
