"""The WebSocket masker, run against the pure-Python module and its compiled twin.

Each twin is checked against a byte-by-byte reference (RFC 6455 section 5.3, literally), and the
two twins against each other, over short and long payloads, every offset of the key and every kind
of buffer a caller may hand in.
"""

from __future__ import annotations

import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.twins import twin_fixtures

# `wsmask` is one of the twins (every test taking it runs once per twin); `twins` is the pair
wsmask, twins = twin_fixtures('zato.proto.wsmask', 'zato.cy.wsmask', 'wsmask')

KEYS = st.binary(min_size=4, max_size=4)
# Short payloads cover every tail length after the 8- and 32-byte blocks; long ones the blocks themselves
# Long ones are made from a seed, so that Hypothesis does not draw (and shrink) every byte
PAYLOADS = st.one_of(st.binary(max_size=100), st.builds(lambda seed, size: random.Random(seed).randbytes(size),
                                                         st.integers(0, 1 << 32), st.integers(100, 70_000)))
BUFFERS = st.sampled_from([bytes, bytearray, memoryview])


def reference(data: bytes, key: bytes) -> bytes:
    """RFC 6455 section 5.3: octet i of the result is octet i of the data XOR octet i MOD 4 of the key."""
    return bytes(octet ^ key[i % 4] for i, octet in enumerate(data))


def test_both_twins_expose_only_mask(twins):
    pure, compiled = twins
    assert pure.__all__ == compiled.__all__ == ['mask']


def test_the_rfc_example_of_a_masked_hello_is_unmasked(wsmask):
    # RFC 6455 section 5.7: a masked text frame containing "Hello"
    frame = bytes.fromhex('818537fa213d7f9f4d5158')
    assert wsmask.mask(frame[6:], frame[2:6]) == b'Hello'


def test_empty_data_gives_empty_bytes(wsmask):
    assert wsmask.mask(b'', b'abcd') == b''
    assert type(wsmask.mask(bytearray(), b'abcd')) is bytes


@pytest.mark.parametrize('size', [1, 3, 4, 5, 7, 8, 9, 31, 32, 33, 39, 40, 41, 125, 126, 16384, 65537])
def test_every_length_around_the_block_sizes_matches_the_reference(wsmask, size):
    data, key = os.urandom(size), os.urandom(4)
    assert wsmask.mask(data, key) == reference(data, key)


@pytest.mark.parametrize('key', [b'abc', b'abcde', b''])
def test_a_key_that_is_not_4_bytes_is_refused(wsmask, key):
    with pytest.raises(ValueError, match='4 bytes'):
        wsmask.mask(b'payload', key)


def test_a_key_may_be_any_buffer(wsmask):
    data = os.urandom(50)
    expected = reference(data, b'\x01\x02\x03\x04')
    for key in (b'\x01\x02\x03\x04', bytearray(b'\x01\x02\x03\x04'), memoryview(b'\x00\x01\x02\x03\x04')[1:]):
        assert wsmask.mask(data, key) == expected


def test_a_sliced_memoryview_is_masked_from_its_own_start(wsmask):
    data = os.urandom(100)
    assert wsmask.mask(memoryview(data)[3:90], b'wxyz') == reference(data[3:90], b'wxyz')


@settings(max_examples=300)
@given(data=PAYLOADS, key=KEYS, kind=BUFFERS)
def test_any_payload_in_any_buffer_is_masked_like_the_reference(wsmask, data, key, kind):
    result = wsmask.mask(kind(data), key)
    assert type(result) is bytes
    assert result == reference(data, key)


@settings(max_examples=300)
@given(data=PAYLOADS, key=KEYS, kind=BUFFERS)
def test_masking_twice_gives_back_the_data(wsmask, data, key, kind):
    assert wsmask.mask(wsmask.mask(kind(data), key), kind(key)) == data


@settings(max_examples=300)
@given(data=PAYLOADS, key=KEYS, kind=BUFFERS)
def test_the_compiled_twin_masks_exactly_like_the_pure_python_one(twins, data, key, kind):
    pure, compiled = twins
    assert compiled.mask(kind(data), key) == pure.mask(kind(data), key)
