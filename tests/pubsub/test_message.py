"""A publication's input (zato.pubsub.message): each rule of the module's docstring."""

from __future__ import annotations

import pytest

from zato.errors import BadRequest
from zato.pubsub.errors import DataTooLarge
from zato.pubsub.keys import new_msg_id, new_sub_key
from zato.pubsub.message import MAX_EXPIRATION, new_message


def test_defaults_are_3_1s_with_expiration_in_milliseconds():
    msg = new_message({'data': 'hi'}, 100)
    assert (msg.priority, msg.expiration, msg.mime_type, msg.data_format, msg.size) == \
           (5, MAX_EXPIRATION, 'text/plain', 'text', 2)


def test_json_data_is_kept_encoded_and_measured_as_json():
    msg = new_message({'data': {'a': 1}}, 100)
    assert (msg.data, msg.data_format, msg.size) == ('{"a":1}', 'json', 7)


@pytest.mark.parametrize('fields', [{'priority': 0}, {'priority': 10}, {'priority': True}, {'priority': 5.0},
                                    {'expiration': -1}, {'expiration': MAX_EXPIRATION + 1}, {'correl_id': 1},
                                    {'correl_id': 'x' * 201}, {'has_gd': 'yes'}, {'ext_pub_time': 'now'}])
def test_a_field_out_of_range_or_of_the_wrong_type_is_a_400_naming_it(fields):
    with pytest.raises(BadRequest) as e:
        new_message({'data': 'x', **fields}, 100)
    assert f'`{next(iter(fields))}`' in e.value.details


def test_missing_data_is_3_1s_400_and_too_much_a_413():
    with pytest.raises(BadRequest, match='No data sent on input'):
        new_message({'priority': 5}, 100)
    with pytest.raises(DataTooLarge) as e:
        new_message({'data': 'é' * 51}, 100)  # 102 bytes of UTF-8
    assert e.value.status == 413


def test_ids_carry_128_random_bits():
    assert len(new_msg_id()) == 4 + 32
    key = new_sub_key('rest')
    assert key.startswith('zpsk.rest.') and len(key.split('.')[-1]) == 32
    assert len({new_sub_key('rest') for _ in range(1000)}) == 1000
