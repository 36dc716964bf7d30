"""Searching users (super-users only), paginated as 3.1 did: exact or partial names, combined with
`name_op` (and / or); the other criteria always all apply."""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import and_, func, or_, select

from zato.odb.models import SSOUser
from zato.sso.context import SSOContext
from zato.sso.status import SSOError, status_code
from zato.sso.users import APPROVAL, NAMES, SIGN_UP, user_to_dict

EXACT = ('user_id', 'username', 'sign_up_status', 'approval_status')


def _invalid() -> SSOError:
    return SSOError(status_code.common.invalid_input)


def _int(ctx: dict[str, Any], key: str, default: int) -> int:
    value = ctx.get(key, default)
    if value is None or value == '':
        return default
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 10:
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _invalid()
    return value


def _bool(ctx: dict[str, Any], key: str, default: bool) -> bool:
    value = ctx.get(key, default)
    if isinstance(value, str):
        if value.lower() in ('true', '1'):
            return True
        if value.lower() in ('false', '0'):
            return False
    if not isinstance(value, bool):
        raise _invalid()
    return value


def _like(text: str) -> str:
    return '%' + text.replace('\\', '\\\\').replace('%', '\\%').replace('_', '\\_') + '%'


def search(ctx: SSOContext, session: Any, criteria: dict[str, Any]) -> dict[str, Any]:
    if not isinstance(criteria, dict):
        raise _invalid()
    conf = ctx.config['search']
    paginate = _bool(criteria, 'paginate', True)
    cur_page = _int(criteria, 'cur_page', 1)
    page_size = _int(criteria, 'page_size', conf['default_page_size'])
    page_size = min(page_size, conf['max_page_size'])
    name_op = criteria.get('name_op', 'and') or 'and'
    if name_op not in ('and', 'or'):
        raise _invalid()
    is_name_exact = _bool(criteria, 'is_name_exact', True)

    where: list[Any] = [SSOUser.cluster_id == ctx.cluster_id]
    for key in EXACT:
        value = criteria.get(key)
        if value is None or value == '':
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise _invalid()
        if key == 'sign_up_status' and value not in SIGN_UP or key == 'approval_status' and value not in APPROVAL:
            raise _invalid()
        where.append(SSOUser.username_key == value.casefold() if key == 'username' else getattr(SSOUser, key) == value)
    email = criteria.get('email')
    if email:
        if not isinstance(email, str):
            raise _invalid()
        where.append(SSOUser.email_key == ctx.email_key(email))
    names = []
    for key in NAMES:
        value = criteria.get(key)
        if value is None or value == '':
            continue
        if not isinstance(value, str) or len(value) > 200:
            raise _invalid()
        column = getattr(SSOUser, f'{key}_upper')
        names.append(column == value.upper() if is_name_exact else column.like(_like(value.upper()), escape='\\'))
    if names:
        where.append(and_(*names) if name_op == 'and' else or_(*names))

    total = session.scalar(select(func.count()).select_from(SSOUser).where(*where)) or 0
    query = select(SSOUser).where(*where).order_by(SSOUser.username_key)
    if paginate:
        query = query.offset((cur_page - 1) * page_size).limit(page_size)
    rows = session.scalars(query).all()
    num_pages = max(1, math.ceil(total / page_size)) if paginate else 1
    return {'total': total, 'num_pages': num_pages, 'page_size': page_size if paginate else total,
            'cur_page': cur_page if paginate else 1,
            'has_next_page': paginate and cur_page < num_pages, 'has_prev_page': paginate and cur_page > 1,
            'next_page': cur_page + 1 if paginate and cur_page < num_pages else None,
            'prev_page': cur_page - 1 if paginate and cur_page > 1 else None,
            'result': [user_to_dict(ctx, row) for row in rows]}
