"""Admin services of inbound Kafka channels (/zato/admin/channels/kafka ...): create, edit, delete,
get, list, and the status of each worker's consumer."""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select

from zato.errors import BadRequest
from zato.odb.models import ChannelKafka, OutConn
from zato.server.admin.base import AdminService, parse_id
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList

DATA_FORMATS = ('json', 'text', 'bytes')
START_FROM = ('earliest', 'latest')
ON_ERROR = ('retry', 'dead_letter')

# Every input a channel takes; any other is refused, so that a misspelt field is not silently ignored
INPUTS = frozenset(('id', 'name', 'is_active', 'out_conn', 'topics', 'group_id', 'service', 'data_format',
                    'start_from', 'on_error', 'max_attempts', 'dead_letter_topic', 'retry_min', 'retry_max'))

# Kafka's own rule for topic names
_TOPIC = re.compile(r'^[A-Za-z0-9._-]{1,249}$')

# field, minimum, maximum, default
_SECONDS = (('retry_min', 0.001, 3600.0, 0.5), ('retry_max', 0.001, 86400.0, 30.0))
MAX_ATTEMPTS = (1, 1000, 5)


def kafka_channel_to_dict(row: ChannelKafka, out_conn_name: str | None) -> dict[str, Any]:
    return {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'out_conn': out_conn_name,
            'out_conn_id': row.out_conn_id, 'topics': list(row.topics or ()), 'group_id': row.group_id,
            'service': row.service_name, 'data_format': row.data_format, 'start_from': row.start_from,
            'on_error': row.on_error, 'max_attempts': row.max_attempts, 'dead_letter_topic': row.dead_letter_topic,
            'retry_min': row.retry_min, 'retry_max': row.retry_max}


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise BadRequest(f'Invalid input `{name}`: expected one of {", ".join(allowed)}')
    return value


def _topic(name: str, value: str) -> str:
    if not _TOPIC.match(value) or value in ('.', '..'):
        raise BadRequest(f'Invalid input `{name}`: `{value}` is not a Kafka topic name '
                         '(1 to 249 letters, digits, dots, underscores or hyphens)')
    return value


def _topics(data: dict[str, Any], current: list[str]) -> list[str]:
    if data.get('topics') is None:
        topics = list(current or ())
    else:
        value = data['topics']
        if isinstance(value, str):
            value = [item.strip() for item in value.replace('\n', ',').split(',') if item.strip()]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise BadRequest('Invalid input `topics`: expected a list of topic names')
        topics = list(dict.fromkeys(_topic('topics', item) for item in value))
    if not topics:
        raise BadRequest('Invalid input `topics`: at least one topic is required')
    return topics


def _seconds(data: dict[str, Any], name: str, low: float, high: float, current: float) -> float:
    value: float = AdminService.field(data, name, float, False, current)
    if not low <= value <= high:
        raise BadRequest(f'Invalid input `{name}`: expected {low:g} to {high:g} seconds')
    return value


class _KafkaChannelBase(CRUD):
    zato_dont_import = True

    model = ChannelKafka
    label = 'Kafka channel'
    bus_kind = 'channel_kafka'

    def _new_row(self) -> ChannelKafka:
        return ChannelKafka(cluster_id=self.server.cluster_id, version=1, opaque={}, topics=[], service_name='',
                            group_id='', data_format='json', start_from='earliest', on_error='retry',
                            dead_letter_topic='')

    def _out_conn(self, session: Any, value: Any) -> int:
        """The id of the outgoing Kafka connection `value` names (by name, or by id as a number)."""
        query = select(OutConn).where(OutConn.cluster_id == self.server.cluster_id, OutConn.kind == 'kafka')
        if isinstance(value, int) and not isinstance(value, bool):
            out_conn_id = parse_id(value)
            row = None if out_conn_id is None else session.scalars(query.where(OutConn.id == out_conn_id)).one_or_none()
        elif isinstance(value, str) and value:
            row = session.scalars(query.where(OutConn.name == value)).one_or_none()
        else:
            raise BadRequest('Invalid input `out_conn`: expected the name or id of an outgoing Kafka connection')
        if row is None:
            raise BadRequest(f'Invalid input `out_conn`: no outgoing Kafka connection `{value}`')
        return int(row.id)

    def _apply(self, session: Any, row: ChannelKafka, data: dict[str, Any], creating: bool) -> None:
        unknown = sorted(set(data) - INPUTS)
        if unknown:
            raise BadRequest(f'Invalid input `{unknown[0]}`: a Kafka channel has no such field')
        f = self.field
        self._apply_name(row, data, creating)
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        if creating or data.get('out_conn') is not None:
            if data.get('out_conn') is None:
                raise BadRequest('Missing input `out_conn`')
            row.out_conn_id = self._out_conn(session, data['out_conn'])
        row.topics = _topics(data, row.topics)
        group_id = f(data, 'group_id', str, False, row.name if creating else row.group_id)
        if not group_id or len(group_id) > 255:
            raise BadRequest('Invalid input `group_id`: expected 1 to 255 characters')
        row.group_id = group_id
        self._apply_service(session, row, data, creating)
        row.data_format = _one_of('data_format', f(data, 'data_format', str, False, row.data_format), DATA_FORMATS)
        row.start_from = _one_of('start_from', f(data, 'start_from', str, False, row.start_from), START_FROM)
        row.on_error = _one_of('on_error', f(data, 'on_error', str, False, row.on_error), ON_ERROR)
        low, high, default = MAX_ATTEMPTS
        row.max_attempts = f(data, 'max_attempts', int, False, default if creating else row.max_attempts)
        if not low <= row.max_attempts <= high:
            raise BadRequest(f'Invalid input `max_attempts`: expected {low} to {high}')
        for name, low_s, high_s, default_s in _SECONDS:
            setattr(row, name, _seconds(data, name, low_s, high_s, default_s if creating else getattr(row, name)))
        if row.retry_min > row.retry_max:
            raise BadRequest('Invalid input `retry_max`: expected at least retry_min')
        dead_letter_topic = f(data, 'dead_letter_topic', str, False, row.dead_letter_topic)
        if dead_letter_topic:
            _topic('dead_letter_topic', dead_letter_topic)
            if dead_letter_topic in row.topics:
                raise BadRequest('Invalid input `dead_letter_topic`: the channel consumes it itself')
        elif row.on_error == 'dead_letter':
            raise BadRequest('Invalid input `dead_letter_topic`: required with on_error `dead_letter`')
        row.dead_letter_topic = dead_letter_topic

    def _to_dict(self, session: Any, row: ChannelKafka) -> dict[str, Any]:
        out_conn = None if row.out_conn_id is None else session.get(OutConn, row.out_conn_id)
        return kafka_channel_to_dict(row, None if out_conn is None else out_conn.name)


class CreateKafkaChannel(_KafkaChannelBase, Create):
    name = 'zato.channel.kafka.create'


class EditKafkaChannel(_KafkaChannelBase, Edit):
    name = 'zato.channel.kafka.edit'


class DeleteKafkaChannel(_KafkaChannelBase, Delete):
    name = 'zato.channel.kafka.delete'


class GetKafkaChannel(_KafkaChannelBase, Get):
    name = 'zato.channel.kafka.get'


class GetKafkaChannelList(_KafkaChannelBase, GetList):
    name = 'zato.channel.kafka.get-list'


class GetKafkaChannelStatus(_KafkaChannelBase):
    """What each worker's consumer of the channel is doing, from every worker that answers."""
    name = 'zato.channel.kafka.get-status'

    def handle(self) -> None:
        with self.server.Session() as session:
            row = self._get_row(session)
            channel_id, name, is_active, version = row.id, row.name, row.is_active, row.version
        workers = self.server.kafka_channels.cluster_status(channel_id)
        self.response.payload = {'id': channel_id, 'name': name, 'is_active': is_active, 'version': version,
                                 'workers': workers}
