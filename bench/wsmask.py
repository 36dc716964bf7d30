"""Micro-benchmark of WebSocket masking and UTF-8 checking, ours against the libraries that do the same.

Run from the repository root after ``python setup.py build_ext --inplace``:

    .venv/bin/python bench/wsmask.py            # pin it for steadier figures: taskset -c 1 ...

What is compared:

* masking 16 KiB and 125 bytes with one key: ``zato.cy.wsmask.mask`` (Cython, 8 bytes at a time),
  ``zato.proto.wsmask.mask`` (pure Python, one big-integer XOR), wsaccel's ``XorMaskerSimple`` (a new
  masker per frame, as a frame parser must make one) and ``websockets.speedups.apply_mask`` (C, SSE2);
* checking 16 KiB of text as UTF-8, ASCII and mixed (Polish, Greek, CJK, emoji): ``bytes.decode``,
  CPython's incremental decoder (a fresh one per message, as zato.proto.websocket uses it for
  fragmented and compressed text, fed in four fragments), and wsaccel's ``Utf8Validator`` alone and
  followed by the decode that a str message needs anyway;
* reading one message with ``zato.proto.websocket.Connection``: a masked 16 KiB binary frame and a
  125-byte text frame, with the compiled masker and with the pure-Python one.

Every figure is the median of REPEATS timeit runs, per call, loop overhead included.
"""

from __future__ import annotations

import codecs
import os
import statistics
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.speedups import apply_mask  # noqa: E402
from wsaccel.utf8validator import Utf8Validator  # noqa: E402
from wsaccel.xormask import XorMaskerSimple  # noqa: E402

from zato.proto import websocket, wsmask  # noqa: E402

REPEATS = 15
TARGET_SECONDS = 0.05  # per timeit run
KEY = os.urandom(4)
BIG = os.urandom(16384)
SMALL = os.urandom(125)

_MIXED_UNIT = 'Zażółć gęślą jaźń, καλημέρα κόσμε, 日本語のテキスト, 🙂 and some ASCII. '
ASCII_TEXT = (('The quick brown fox jumps over the lazy dog. ' * 400)[:16384]).encode()
MIXED_TEXT = (_MIXED_UNIT * 200).encode()[:16384].decode('utf-8', 'ignore').encode()


def per_call(func: Callable[[], object]) -> float:
    """The median time of one call in seconds over REPEATS runs, each long enough to be measured."""
    number = 1
    while True:
        took = timeit.timeit(func, number=number)
        if took >= TARGET_SECONDS / 5:
            break
        number *= 4
    number = max(1, int(number * TARGET_SECONDS / max(took, 1e-9)))
    return statistics.median(t / number for t in timeit.repeat(func, number=number, repeat=REPEATS))


def human(seconds: float) -> str:
    if seconds < 1e-6:
        return f'{seconds * 1e9:,.0f} ns'
    if seconds < 1e-3:
        return f'{seconds * 1e6:,.2f} µs'
    return f'{seconds * 1e3:,.2f} ms'


def table(title: str, rows: list[tuple[str, list[float]]], columns: list[str]) -> None:
    print(f'\n{title}\n')
    print('| ' + ' | '.join(['implementation', *columns]) + ' |')
    print('|---|' + '--:|' * len(columns))
    for name, figures in rows:
        print('| ' + ' | '.join([name, *(human(f) for f in figures)]) + ' |')


def masking() -> None:
    try:
        from zato.cy import wsmask as compiled
    except ImportError:
        sys.exit('zato.cy.wsmask is not built: .venv/bin/python setup.py build_ext --inplace')
    for data in (BIG, SMALL):
        expected = wsmask.mask(data, KEY)
        assert compiled.mask(data, KEY) == apply_mask(data, KEY) == XorMaskerSimple(KEY).process(data) == expected

    cases = [
        ('zato.cy.wsmask (Cython)', lambda data: lambda: compiled.mask(data, KEY)),
        ('zato.proto.wsmask (pure Python)', lambda data: lambda: wsmask.mask(data, KEY)),
        ('websockets.speedups.apply_mask (C)', lambda data: lambda: apply_mask(data, KEY)),
        ('wsaccel XorMaskerSimple (Cython)', lambda data: lambda: XorMaskerSimple(KEY).process(data)),
    ]
    rows = [(name, [per_call(make(BIG)), per_call(make(SMALL))]) for name, make in cases]
    table('Masking, per frame', rows, ['16 KiB', '125 B'])
    ours, theirs = rows[0][1][0], rows[2][1][0]
    print(f'\nCompiled masker ÷ websockets C on 16 KiB: {ours / theirs:.2f}x (target: within ~2x)')


def decode_in_fragments(data: bytes) -> Callable[[], str]:
    quarter = len(data) // 4
    pieces = [data[i * quarter:(i + 1) * quarter] for i in range(3)] + [data[3 * quarter:]]

    def run() -> str:
        decoder = codecs.getincrementaldecoder('utf-8')()
        return ''.join([decoder.decode(piece) for piece in pieces[:-1]] + [decoder.decode(pieces[-1], final=True)])
    return run


def validate(data: bytes) -> Callable[[], object]:
    def run() -> object:
        valid, ends_on_code_point, _, _ = Utf8Validator().validate(data)
        return valid and ends_on_code_point
    return run


def validate_then_decode(data: bytes) -> Callable[[], object]:
    def run() -> object:
        valid, ends_on_code_point, _, _ = Utf8Validator().validate(data)
        return valid and ends_on_code_point and data.decode('utf-8')
    return run


def utf8() -> None:
    cases = [
        ('bytes.decode (one frame)', lambda data: lambda: data.decode('utf-8')),
        ('codecs incremental decoder, 4 fragments', decode_in_fragments),
        ('wsaccel Utf8Validator (validates only)', validate),
        ('wsaccel Utf8Validator + bytes.decode', validate_then_decode),
    ]
    rows = [(name, [per_call(make(ASCII_TEXT)), per_call(make(MIXED_TEXT))]) for name, make in cases]
    table('UTF-8 check of 16 KiB of text, per message', rows, ['ASCII', 'mixed scripts'])


def connection() -> None:
    from zato.cy import wsmask as compiled
    big = websocket.encode_frame(websocket.OP_BINARY, BIG, mask=KEY)
    small = websocket.encode_frame(websocket.OP_TEXT, ASCII_TEXT[:125], mask=KEY)

    def read(frame: bytes) -> Callable[[], object]:
        conn = websocket.Connection('server')

        def run() -> object:
            conn.feed(frame)
            return conn.next_event()
        return run

    rows = []
    for name, masker in (('Connection, compiled masker', compiled.mask), ('Connection, pure-Python masker', wsmask.mask)):
        saved, websocket._mask = websocket._mask, masker
        try:
            rows.append((name, [per_call(read(big)), per_call(read(small))]))
        finally:
            websocket._mask = saved
    table('Reading one masked message on the server (feed + next_event)', rows, ['16 KiB binary', '125 B text'])


if __name__ == '__main__':
    print(f'Python {sys.version.split()[0]}, median of {REPEATS} runs')
    masking()
    utf8()
    connection()
