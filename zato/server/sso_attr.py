"""3.1's REST channels of SSO attributes: /zato/sso/user/attr... (a user's own; a super-user's any
user's, by `user_id`) and /zato/sso/session/attr... (a session's own; `target_ust` names another
session, the caller's or, for a super-user, anyone's). The core is zato.sso.attr.

Input as 3.1 took it: `name` (with `value`) for one attribute, or `data`, a list, for the _many forms
(items {name, value, expiration?, encrypt?} to write, names to read or delete); `expiration` and
`encrypt` apply to every item that does not say otherwise. A GET's query string gives `data` as a
JSON list and the flags as true or false.
"""

from __future__ import annotations

from typing import Any

import orjson

from zato.server.sso import _SSOService
from zato.sso.attr import Attrs
from zato.sso.status import SSOError, status_code

_FLAGS = {True: True, False: False, 'true': True, 'false': False, '1': True, '0': False, 'True': True, 'False': False}


class _AttrService(_SSOService):
    zato_dont_import = True
    scope = 'user'
    op = ''

    def attrs(self, data: dict[str, Any]) -> Attrs:
        """The attributes the caller names and may reach: the session checks are the user and session calls'."""
        app, addr = self.text(data, 'current_app'), self.remote_addr()
        if self.scope == 'session':
            return self.sso.user.session.get(self.cid, self.text(data, 'target_ust', False), self.ust(data), app,
                                             addr).attr
        user_id = self.text(data, 'user_id', False)
        if user_id:
            return self.sso.user.get_user_by_id(self.cid, user_id, self.ust(data), app, addr).attr
        return self.sso.user.get_current_user(self.cid, self.ust(data), app, addr).attr

    @staticmethod
    def flag(data: dict[str, Any], name: str, default: bool) -> bool:
        value = data.get(name, default)
        if value is None or value == '':
            return default
        try:
            return _FLAGS[value]
        except (KeyError, TypeError):
            raise SSOError(status_code.common.invalid_input) from None

    @staticmethod
    def many(data: dict[str, Any]) -> Any:
        """`data`: a list, or a query string's JSON list."""
        items = data['data']
        if isinstance(items, str):
            try:
                items = orjson.loads(items)
            except orjson.JSONDecodeError:
                raise SSOError(status_code.common.invalid_input) from None
        return items

    def handle(self) -> None:
        data = self.input()
        attrs = self.attrs(data)
        self.reply(getattr(self, f'_{self.op}')(attrs, data))

    # What each operation does with the input

    def _write(self, attrs: Attrs, data: dict[str, Any]) -> None:
        kwargs = {key: data[key] for key in ('expiration', 'encrypt') if key in data}
        if 'data' in data:
            getattr(attrs, f'{self.op}_many')(self.many(data), **kwargs)
            return None
        if 'value' not in data:
            raise SSOError(status_code.common.missing_input)
        getattr(attrs, self.op)(data.get('name'), data['value'], **kwargs)
        return None

    _create = _update = _set = _write

    def _delete(self, attrs: Attrs, data: dict[str, Any]) -> None:
        if 'data' in data:
            attrs.delete_many(self.many(data))
        else:
            attrs.delete(data.get('name'))

    def _get(self, attrs: Attrs, data: dict[str, Any]) -> dict[str, Any]:
        decrypt = self.flag(data, 'decrypt', True)
        if 'data' in data:
            found = attrs.get_many(self.many(data), decrypt, serialize_dt=True)
            return {'result': {name: None if attr is None else attr.to_dict() for name, attr in found.items()}}
        attr = attrs.get(data.get('name'), decrypt, serialize_dt=True)
        return {'found': False} if attr is None else {'found': True, **attr.to_dict()}

    def _exists(self, attrs: Attrs, data: dict[str, Any]) -> dict[str, Any]:
        if 'data' in data:
            return {'result': attrs.exists_many(self.many(data))}
        return {'result': attrs.exists(data.get('name'))}

    def _names(self, attrs: Attrs, data: dict[str, Any]) -> dict[str, Any]:
        return {'result': attrs.names()}


class UserAttrCreate(_AttrService):
    """POST /zato/sso/user/attr: E009001 if it exists."""
    name, op = 'zato.sso.user.attr.create', 'create'


class UserAttrUpdate(_AttrService):
    """PATCH /zato/sso/user/attr: E009002 if there is none."""
    name, op = 'zato.sso.user.attr.update', 'update'


class UserAttrSet(_AttrService):
    """PUT /zato/sso/user/attr: creates or replaces."""
    name, op = 'zato.sso.user.attr.set', 'set'


class UserAttrDelete(_AttrService):
    """DELETE /zato/sso/user/attr: E009002 if there is none."""
    name, op = 'zato.sso.user.attr.delete', 'delete'


class UserAttrGet(_AttrService):
    """GET /zato/sso/user/attr -> {found, name, value, creation_time, last_modified, expiration_time,
    is_encrypted}, or {result: {name: ... or null}} for `data`."""
    name, op = 'zato.sso.user.attr.get', 'get'


class UserAttrExists(_AttrService):
    """GET /zato/sso/user/attr/exists -> {result: true|false}, or {result: {name: true|false}}."""
    name, op = 'zato.sso.user.attr.exists', 'exists'


class UserAttrNames(_AttrService):
    """GET /zato/sso/user/attr/names -> {result: [names]}."""
    name, op = 'zato.sso.user.attr.names', 'names'


class SessionAttrCreate(_AttrService):
    name, op, scope = 'zato.sso.session.attr.create', 'create', 'session'


class SessionAttrUpdate(_AttrService):
    name, op, scope = 'zato.sso.session.attr.update', 'update', 'session'


class SessionAttrSet(_AttrService):
    name, op, scope = 'zato.sso.session.attr.set', 'set', 'session'


class SessionAttrDelete(_AttrService):
    name, op, scope = 'zato.sso.session.attr.delete', 'delete', 'session'


class SessionAttrGet(_AttrService):
    name, op, scope = 'zato.sso.session.attr.get', 'get', 'session'


class SessionAttrExists(_AttrService):
    name, op, scope = 'zato.sso.session.attr.exists', 'exists', 'session'


class SessionAttrNames(_AttrService):
    name, op, scope = 'zato.sso.session.attr.names', 'names', 'session'
