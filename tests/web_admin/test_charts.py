"""The web-admin's SVG line charts: well-formed and accessible, text escaped, values placed inside the
plot on rounded ticks, minutes without calls drawn at zero."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings, strategies as st
from markupsafe import Markup

from zato_web_admin.charts import BOTTOM, HEIGHT, LEFT, RIGHT, TOP, WIDTH, Line, line_chart, nice_ticks, number, \
    usage_charts

SVG = '{http://www.w3.org/2000/svg}'
LABELS = [f'12:{m:02}' for m in range(60)]


def parse(svg: str) -> ET.Element:
    return ET.fromstring(str(svg))


def polyline_points(root: ET.Element, series: int) -> list[tuple[float, float]]:
    line = root.find(f".//{SVG}g[@class='series series-{series}']/{SVG}polyline")
    assert line is not None
    return [(float(x), float(y)) for x, y in (p.split(',') for p in line.get('points', '').split())]


def texts(root: ET.Element, group: str) -> list[str]:
    return [t.text or '' for t in root.findall(f".//{SVG}g[@class='{group}']/{SVG}text")]


def test_a_chart_is_one_well_formed_svg_labelled_by_its_title_and_desc():
    svg = line_chart('Requests per minute', LABELS, [Line('Requests', [1.0] * 60)], unit='requests')
    assert isinstance(svg, Markup)
    root = parse(svg)
    assert root.tag == f'{SVG}svg'
    assert root.get('role') == 'img'
    title, desc = root[0], root[1]
    assert title.tag == f'{SVG}title' and title.text == 'Requests per minute'
    assert desc.tag == f'{SVG}desc' and desc.text.startswith('From 12:00 to 12:59.')
    assert root.get('aria-labelledby') == f'{title.get("id")} {desc.get("id")}'
    assert root.get('id') == 'chart-requests-per-minute'


def test_every_piece_of_text_is_escaped():
    evil = '<script>alert(1)</script> & "quoted"'
    svg = line_chart(evil, ['<b>', '</svg>'], [Line(evil, [1, 2])], unit=evil, desc=evil, chart_id=evil)
    assert '<script>' not in svg and '<b>' not in svg and '</svg>' not in svg[:-6]
    root = parse(svg)  # still one well-formed document
    assert root.find(f'{SVG}title').text == evil
    assert root.find(f'{SVG}desc').text == evil
    assert evil in texts(root, 'legend')
    assert root.find(f".//{SVG}g[@class='series series-0']").get('data-label') == evil
    assert root.get('id') == 'chart-script-alert-1-script-quoted'


def test_the_legend_names_every_line_in_its_colour():
    root = parse(line_chart('Latency', LABELS, [Line('p50', [1] * 60), Line('p99', [2] * 60)], unit='ms'))
    assert texts(root, 'legend') == ['p99', 'p50']  # laid out from the right
    swatches = [r.get('fill') for r in root.findall(f".//{SVG}g[@class='legend']/{SVG}rect")]
    strokes = [root.find(f".//{SVG}g[@class='series series-{k}']/{SVG}polyline").get('stroke') for k in (1, 0)]
    assert swatches == strokes and len(set(strokes)) == 2


def test_the_y_axis_has_rounded_ticks_up_to_at_least_the_highest_value_and_its_unit():
    root = parse(line_chart('Requests', LABELS, [Line('Requests', [7] + [0] * 59)], unit='requests'))
    assert texts(root, 'y-ticks') == ['0', '2', '4', '6', '8']
    assert root.find(f".//{SVG}text[@class='axis-title']").text == 'requests'


def test_the_x_axis_labels_every_tenth_minute_and_the_last():
    root = parse(line_chart('Requests', LABELS, [Line('Requests', [0] * 60)]))
    assert texts(root, 'x-ticks') == ['12:00', '12:10', '12:20', '12:30', '12:40', '12:50', '12:59']


def test_points_span_the_plot_left_to_right_and_the_highest_reaches_the_top_tick():
    values = [0, 5, 10, 2.5]
    root = parse(line_chart('x', LABELS[:4], [Line('v', values)]))
    points = polyline_points(root, 0)
    assert [x for x, _ in points] == [LEFT, pytest.approx(LEFT + (WIDTH - RIGHT - LEFT) / 3, abs=0.1),
                                      pytest.approx(LEFT + 2 * (WIDTH - RIGHT - LEFT) / 3, abs=0.1), WIDTH - RIGHT]
    assert points[0][1] == HEIGHT - BOTTOM      # zero on the x axis
    assert points[2][1] == TOP                  # 10 is the top tick
    assert points[1][1] == pytest.approx((TOP + HEIGHT - BOTTOM) / 2, abs=0.1)
    # A point with a tooltip for each value above zero only
    tips = [t.text for t in root.findall(f'.//{SVG}circle/{SVG}title')]
    assert tips == ['12:01: v 5', '12:02: v 10', '12:03: v 2.5']


def test_missing_values_and_minutes_without_calls_are_drawn_at_zero():
    root = parse(line_chart('x', LABELS[:3], [Line('p99', [None, 4.0]), Line('p50', [float('nan'), 1, 2])]))
    assert [y for _, y in polyline_points(root, 0)] == [HEIGHT - BOTTOM, TOP, HEIGHT - BOTTOM]  # short: padded
    assert polyline_points(root, 1)[0][1] == HEIGHT - BOTTOM


def test_an_all_zero_chart_still_has_an_axis_and_says_so():
    root = parse(line_chart('Errors', LABELS, [Line('Errors', [0] * 60)]))
    assert texts(root, 'y-ticks') == ['0', '0.25', '0.5', '0.75', '1']
    assert root.find(f'{SVG}desc').text == 'From 12:00 to 12:59. Errors: zero throughout.'
    assert root.findall(f'.//{SVG}circle') == []


def test_a_chart_of_one_point_or_none_is_drawn_without_dividing_by_zero():
    one = parse(line_chart('x', ['12:00'], [Line('v', [3])]))
    assert polyline_points(one, 0) == [((LEFT + WIDTH - RIGHT) / 2, TOP)]
    empty = parse(line_chart('x', [], [Line('v', [])]))
    assert empty.find(f'{SVG}desc').text == 'No data.'
    assert empty.find(f'.//{SVG}polyline') is None


@pytest.mark.parametrize(('top', 'ticks'), [
    (0, [0, 0.25, 0.5, 0.75, 1]), (1, [0, 0.25, 0.5, 0.75, 1]), (3, [0, 1, 2, 3]), (10, [0, 2.5, 5, 7.5, 10]),
    (11, [0, 5, 10, 15]), (99.5, [0, 25, 50, 75, 100]), (1234, [0, 500, 1000, 1500]), (0.003, [0, 0.001, 0.002, 0.003]),
])
def test_ticks_are_round_numbers_from_zero_to_at_least_the_top(top, ticks):
    assert nice_ticks(top) == ticks


@pytest.mark.parametrize(('top', 'ticks'), [(0, [0, 1]), (1, [0, 1]), (3, [0, 1, 2, 3]), (10, [0, 5, 10]), (0.1, [0, 1]),
                                            (40, [0, 10, 20, 30, 40])])
def test_ticks_of_things_counted_are_whole_numbers(top, ticks):
    assert nice_ticks(top, whole=True) == ticks


def test_numbers_are_written_short():
    assert [number(v) for v in (0, 3, 2.5, 0.25, 0.00390625, 12.345, 1234.5, 15_300, 2_500_000, 3e9)] == [
        '0', '3', '2.5', '0.25', '0.00391', '12.3', '1234.5', '15.3k', '2.5M', '3G']


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(min_value=0, max_value=1e9, allow_nan=False)), min_size=1,
                max_size=120), st.booleans())
def test_every_point_of_any_series_lies_inside_the_plot(values, whole):
    labels = [str(i) for i in range(len(values))]
    root = parse(line_chart('any', labels, [Line('v', values)], whole=whole))
    ticks = [float(t.replace('k', 'e3').replace('M', 'e6').replace('G', 'e9')) for t in texts(root, 'y-ticks')]
    assert ticks[-1] >= max((v or 0) for v in values)
    for x, y in polyline_points(root, 0):
        assert LEFT <= x <= WIDTH - RIGHT
        assert TOP - 0.05 <= y <= HEIGHT - BOTTOM + 0.05


def test_usage_charts_plot_requests_error_rate_and_latency_per_minute():
    start = datetime(2025, 1, 2, 12, 0, tzinfo=UTC)
    points = [{'minute': start + timedelta(minutes=i), 'count': 0, 'errors': 0, 'error_rate': 0.0, 'mean_ms': None,
               'p50_ms': None, 'p99_ms': None, 'max_ms': None} for i in range(60)]
    points[30].update(count=8, errors=2, error_rate=0.25, mean_ms=3.0, p50_ms=2.0, p99_ms=9.5)
    charts = usage_charts(points, 'All services', prefix='all-')
    assert set(charts) == {'requests', 'errors', 'latency'}

    requests = parse(charts['requests'])
    assert requests.get('id') == 'chart-all-requests'
    assert requests.find(f'{SVG}title').text == 'All services: requests per minute, 12:00–12:59 UTC'
    assert [t.text for t in requests.findall(f'.//{SVG}circle/{SVG}title')] == ['12:30: Requests 8 requests',
                                                                               '12:30: Errors 2 requests']
    rate = parse(charts['errors'])
    assert [t.text for t in rate.findall(f'.//{SVG}circle/{SVG}title')] == ['12:30: Error rate 25 %']
    latency = parse(charts['latency'])
    p50 = polyline_points(latency, 0)
    assert all(y == HEIGHT - BOTTOM for i, (_, y) in enumerate(p50) if i != 30)  # no calls: at zero
    assert 'p99: highest 9.5 ms at 12:30.' in latency.find(f'{SVG}desc').text
