"""Publish/subscribe: topics, endpoints, subscriptions, GD messages and per-subscription queues
(zato.pubsub; docs/pubsub.md).

The DDL is this migration's own copy, as the tables stood at this revision.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0017'
down_revision = '0016'
branch_labels = None
depends_on = None

_BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def _cluster() -> sa.Column:
    return sa.Column('cluster_id', sa.Integer(), sa.ForeignKey('cluster.id', ondelete='CASCADE'), nullable=False)


def upgrade() -> None:
    op.create_table(
        'pubsub_topic',
        sa.Column('id', sa.Integer(), primary_key=True),
        _cluster(),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_internal', sa.Boolean(), nullable=False),
        sa.Column('has_gd', sa.Boolean(), nullable=False),
        sa.Column('is_api_sub_allowed', sa.Boolean(), nullable=False),
        sa.Column('max_depth_gd', sa.Integer(), nullable=False),
        sa.Column('max_depth_non_gd', sa.Integer(), nullable=False),
        sa.Column('depth_check_freq', sa.Integer(), nullable=False),
        sa.Column('pub_buffer_size_gd', sa.Integer(), nullable=False),
        sa.Column('task_sync_interval', sa.Integer(), nullable=False),
        sa.Column('task_delivery_interval', sa.Integer(), nullable=False),
        sa.Column('on_no_subs_pub', sa.String(20), nullable=False),
        sa.Column('hook_service', sa.String(200), nullable=True),
        sa.Column('gd_depth', sa.Integer(), nullable=False),
        sa.Column('last_pub_time', sa.Float(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'pubsub_endpoint',
        sa.Column('id', sa.Integer(), primary_key=True),
        _cluster(),
        sa.Column('name', sa.String(200), nullable=False),
        sa.Column('endpoint_type', sa.String(20), nullable=False),
        sa.Column('role', sa.String(20), nullable=False),
        sa.Column('topic_patterns', sa.Text(), nullable=False),
        sa.Column('security_id', sa.Integer(), sa.ForeignKey('sec_def.id', ondelete='SET NULL'), nullable=True),
        sa.Column('ws_channel_id', sa.Integer(), sa.ForeignKey('channel_wsx.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('service_name', sa.String(200), nullable=True),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('is_internal', sa.Boolean(), nullable=False),
        sa.Column('last_seen', sa.Float(), nullable=True),
        sa.Column('last_pub_time', sa.Float(), nullable=True),
        sa.Column('last_sub_time', sa.Float(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('cluster_id', 'name'),
        sa.UniqueConstraint('cluster_id', 'security_id'),
        sqlite_autoincrement=True,
    )
    op.create_table(
        'pubsub_sub',
        sa.Column('id', sa.Integer(), primary_key=True),
        _cluster(),
        sa.Column('sub_key', sa.String(80), nullable=False, unique=True),
        sa.Column('endpoint_id', sa.Integer(), sa.ForeignKey('pubsub_endpoint.id', ondelete='CASCADE'),
                  nullable=False),
        sa.Column('topic_id', sa.Integer(), sa.ForeignKey('pubsub_topic.id', ondelete='CASCADE'), nullable=False),
        sa.Column('is_active', sa.Boolean(), nullable=False),
        sa.Column('creation_time', sa.Float(), nullable=False),
        sa.Column('delivery_method', sa.String(20), nullable=False),
        sa.Column('delivery_data_format', sa.String(20), nullable=False),
        sa.Column('delivery_batch_size', sa.Integer(), nullable=False),
        sa.Column('wrap_one_msg_in_list', sa.Boolean(), nullable=False),
        sa.Column('delivery_max_retry', sa.Integer(), nullable=False),
        sa.Column('delivery_err_should_block', sa.Boolean(), nullable=False),
        sa.Column('wait_sock_err', sa.Integer(), nullable=False),
        sa.Column('wait_non_sock_err', sa.Integer(), nullable=False),
        sa.Column('ext_client_id', sa.String(200), nullable=False),
        sa.Column('hook_service', sa.String(200), nullable=True),
        sa.Column('out_rest_id', sa.Integer(), sa.ForeignKey('out_conn.id', ondelete='SET NULL'), nullable=True),
        sa.Column('out_http_method', sa.String(20), nullable=False),
        sa.Column('last_delivery_time', sa.Float(), nullable=True),
        sa.Column('version', sa.Integer(), nullable=False),
        sa.Column('opaque', sa.JSON(), nullable=False),
        sa.UniqueConstraint('endpoint_id', 'topic_id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_pubsub_sub_endpoint_id', 'pubsub_sub', ['endpoint_id'])
    op.create_index('ix_pubsub_sub_topic_id', 'pubsub_sub', ['topic_id'])
    op.create_table(
        'pubsub_message',
        sa.Column('id', _BIG_ID, primary_key=True),
        _cluster(),
        sa.Column('msg_id', sa.String(80), nullable=False, unique=True),
        sa.Column('topic_id', sa.Integer(), sa.ForeignKey('pubsub_topic.id', ondelete='CASCADE'), nullable=False),
        sa.Column('published_by_id', sa.Integer(), sa.ForeignKey('pubsub_endpoint.id', ondelete='SET NULL'),
                  nullable=True),
        sa.Column('pub_pattern_matched', sa.String(200), nullable=False),
        sa.Column('data', sa.Text(), nullable=False),
        sa.Column('data_format', sa.String(20), nullable=False),
        sa.Column('mime_type', sa.String(200), nullable=False),
        sa.Column('size', sa.Integer(), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('expiration', sa.BigInteger(), nullable=False),
        sa.Column('expiration_time', sa.Float(), nullable=False),
        sa.Column('pub_time', sa.Float(), nullable=False),
        sa.Column('ext_pub_time', sa.Float(), nullable=True),
        sa.Column('correl_id', sa.String(200), nullable=False),
        sa.Column('in_reply_to', sa.String(200), nullable=False),
        sa.Column('ext_client_id', sa.String(200), nullable=False),
        sa.Column('group_id', sa.String(200), nullable=False),
        sa.Column('position_in_group', sa.Integer(), nullable=False),
        sa.Column('has_gd', sa.Boolean(), nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_pubsub_message_topic_id', 'pubsub_message', ['topic_id'])
    op.create_index('ix_pubsub_message_expiration_time', 'pubsub_message', ['expiration_time'])
    op.create_table(
        'pubsub_queue',
        sa.Column('id', _BIG_ID, primary_key=True),
        _cluster(),
        sa.Column('sub_id', sa.Integer(), sa.ForeignKey('pubsub_sub.id', ondelete='CASCADE'), nullable=False),
        sa.Column('message_id', _BIG_ID, sa.ForeignKey('pubsub_message.id', ondelete='CASCADE'), nullable=False),
        sa.Column('priority', sa.Integer(), nullable=False),
        sa.Column('pub_time', sa.Float(), nullable=False),
        sa.Column('expiration_time', sa.Float(), nullable=False),
        sa.Column('delivery_count', sa.Integer(), nullable=False),
        sa.Column('visible_after', sa.Float(), nullable=False),
        sa.Column('last_delivery_time', sa.Float(), nullable=True),
        sa.UniqueConstraint('sub_id', 'message_id'),
        sqlite_autoincrement=True,
    )
    op.create_index('ix_pubsub_queue_message_id', 'pubsub_queue', ['message_id'])
    op.create_index('ix_pubsub_queue_delivery', 'pubsub_queue', ['sub_id', 'priority', 'pub_time', 'id'])


def downgrade() -> None:
    op.drop_table('pubsub_queue')
    op.drop_table('pubsub_message')
    op.drop_table('pubsub_sub')
    op.drop_table('pubsub_endpoint')
    op.drop_table('pubsub_topic')
