"""Measures SimpleIO per request: the compiled reader/writer against a naive generic loop.

    .venv/bin/python bench/sio.py

The service has 10 input and 10 output fields of mixed types. "naive" is what a straightforward
implementation does on each request: loop over the declared elements, look each one up in
both sources, branch on required/optional and call the type's conversion. It lives only here,
as the baseline the generated code has to beat.
"""

from __future__ import annotations

import os
import sys
import timeit
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from zato.service.sio import CompiledSIO, Input, SIOInputError, SIOOutputError, compile_sio
from zato.service.sio_types import NOT_GIVEN, Bool, Date, DateTime, Float, Int, Text, Type


class SimpleIO:
    input_required = 'customer_id', Text('name'), Int('age'), Bool('is_active'), Text('email')
    input_optional = Date('since'), 'page_size', Float('score'), 'notes', 'has_orders'
    output_required = 'cust_id', Text('name'), Int('age'), Bool('is_active'), Text('email')
    output_optional = DateTime('created'), 'order_count', Float('score'), 'notes', 'is_vip'
    skip_empty_keys = True


REQUEST = {
    'customer_id': '123', 'name': 'Alice', 'age': 42, 'is_active': True, 'email': 'a@example.com',
    'since': '2024-01-02', 'page_size': 50, 'score': 9.5, 'notes': 'vip',
}
PARAMS: dict[str, Any] = {}
RESPONSE = {
    'cust_id': 123, 'name': 'Alice', 'age': 42, 'is_active': True, 'email': 'a@example.com',
    'order_count': 7, 'score': 9.5, 'notes': 'vip', 'is_vip': None,
}
ARGS = {'parse_input': (REQUEST, PARAMS), 'serialize': (RESPONSE,)}


class Naive:
    """A generic per-request loop over the element metadata; same semantics, no code generation."""

    def __init__(self, compiled: CompiledSIO) -> None:
        self.inputs = [(e, True) for e in compiled.input_required] + [(e, False) for e in compiled.input_optional]
        self.outputs = [(e, True) for e in compiled.output_required] + [(e, False) for e in compiled.output_optional]
        self.skip_empty_keys = compiled.skip_empty_keys

    def parse_input(self, payload: dict[str, Any], params: dict[str, Any]) -> Input:
        out = dict(params)
        for elem, required in self.inputs:
            value = params.get(elem.name, NOT_GIVEN)
            if value is NOT_GIVEN:
                value = payload.get(elem.name, NOT_GIVEN)
            if value is NOT_GIVEN or value is None or (not required and elem.blank_is_missing and value == ''):
                if required:
                    raise SIOInputError.missing(elem.name)
                out[elem.name] = None if elem.default is NOT_GIVEN else elem.default
                continue
            try:
                out[elem.name] = elem.to_python(value)
            except ValueError as e:
                raise SIOInputError.invalid(elem.name, e) from None
        return Input(out)

    def serialize(self, payload: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for elem, required in self.outputs:
            value = payload.get(elem.name)
            empty = value is None or value == ''
            if empty:
                if required:
                    raise SIOOutputError(elem.name, 'missing')
                if not self.skip_empty_keys:
                    out[elem.name] = None
                continue
            out[elem.name] = _to_json(elem, value)
        return out


def _to_json(elem: Type, value: Any) -> Any:
    try:
        return elem.to_json(value)
    except ValueError as e:
        raise SIOOutputError(elem.name, str(e)) from None


def main() -> None:
    compiled = compile_sio(SimpleIO, 'bench.customer')
    assert compiled is not None
    naive = Naive(compiled)
    assert compiled.parse_input(REQUEST, PARAMS) == naive.parse_input(REQUEST, PARAMS)
    assert compiled.serialize(RESPONSE) == naive.serialize(RESPONSE)

    # Short runs, interleaved, best of many: other processes on the machine only ever add time,
    # so the minimum is the figure least disturbed by them
    cases = {(label, op): (lambda impl=impl, op=op: getattr(impl, op)(*ARGS[op]))
             for label, impl in (('compiled', compiled), ('naive', naive)) for op in ARGS}
    best = dict.fromkeys(cases, float('inf'))
    number = 5_000
    for _ in range(40):
        for key, func in cases.items():
            best[key] = min(best[key], timeit.timeit(func, number=number) / number * 1e6)
    rows = [(label, best[label, 'parse_input'], best[label, 'serialize']) for label in ('compiled', 'naive')]

    print('SimpleIO, 10 input + 10 output fields, µs per call (best of 40 runs)')
    print(f'{"":10} {"parse_input":>12} {"serialize":>12} {"both":>8}')
    for label, parse, serialize in rows:
        print(f'{label:10} {parse:12.2f} {serialize:12.2f} {parse + serialize:8.2f}')
    (_, cp, cs), (_, np, ns) = rows
    print(f'speed-up   {np / cp:11.1f}x {ns / cs:11.1f}x {(np + ns) / (cp + cs):7.1f}x')

    # What a service pays to use its input: ``self.request.input.<name>``, ten times
    got = compiled.parse_input(REQUEST, PARAMS)
    reads = '; '.join(f'got.{name}' for name in compiled.input_names)
    read = min(timeit.repeat(reads, globals={'got': got}, number=number, repeat=40)) / number * 1e6
    print(f'reading the {len(compiled.input_names)} inputs as attributes: {read:.2f} µs '
          f'({read * 1e3 / len(compiled.input_names):.0f} ns per read)')


if __name__ == '__main__':
    main()
