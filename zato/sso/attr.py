"""Attributes of SSO users and of their sessions (3.1's `user.attr` and `session.attr`): named JSON
values, optionally encrypted with the environment's key, optionally expiring.

1. A name is a string of 1 to NAME_MAX printable characters; a value is anything JSON holds (no NaN
   or Infinity), at most VALUE_MAX bytes as JSON; an expiration is a whole number of seconds from
   1 to EXPIRATION_MAX (None: never); a _many call takes 1 to MANY_MAX items, each name once.
   Anything else is E008002; no name at all is E008003.
2. `create` fails with E009001 when the attribute exists; `update` and `delete` fail with E009002
   when it does not; `set` creates or replaces. Each is one statement (`set` and `create` an
   INSERT ... ON CONFLICT DO UPDATE), so two workers setting one attribute at the same moment leave
   one of the two values, and two creating it get one success and one E009001, never an error of
   the database.
3. An attribute whose expiry has passed does not exist for any call, though the purge
   (zato.sso.purge) has not deleted it yet: `get` answers None, `create` makes it anew. `update` and
   `set` given no expiration keep the attribute's own (as 3.1 did).
4. The _many forms are all or nothing: one transaction, and the first refusal leaves everything as
   it was.
5. With `encrypt=True` the ODB holds the JSON encrypted with the environment's key (the Cipher of
   zato.sso.context, Fernet); `get` decrypts it unless `decrypt=False`, which answers the stored
   ciphertext, as 3.1 did.
6. A session's attributes go with their session, and all of a user's with the user (ON DELETE
   CASCADE); writing to an owner that has just gone is E007001.

Who may reach whose attributes is decided before an `Attrs` is made (zato.sso.api): an `Attrs` is
bound to one user's own attributes, or to one session's.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, case, delete, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from zato.odb.models import SSOAttr
from zato.sso.context import SSOContext, iso
from zato.sso.status import SSOError, status_code

logger = logging.getLogger('zato.sso')

NAME_MAX = 200               # characters (the column's size)
VALUE_MAX = 65_536           # bytes of the value as JSON, before encryption
EXPIRATION_MAX = 10 * 365 * 86400
MANY_MAX = 100

_table = SSOAttr.__table__
_NOT_GIVEN: Any = object()


def invalid(why: str, *args: Any) -> SSOError:
    """E008002, with the reason in the log only (the envelope carries codes, as in 3.1)."""
    logger.info('SSO attribute input refused: ' + why, *args)
    return SSOError(status_code.common.invalid_input)


def check_name(name: Any) -> str:
    if name is None or name == '':
        raise SSOError(status_code.common.missing_input)
    if not isinstance(name, str):
        raise invalid('a name must be a string')
    if len(name) > NAME_MAX:
        raise invalid('a name has %d characters, more than %d', len(name), NAME_MAX)
    if not name.isprintable():
        raise invalid('a name has a control character')
    return name


def check_expiration(expiration: Any) -> int | None:
    if expiration is None:
        return None
    if not isinstance(expiration, int) or isinstance(expiration, bool) or not 1 <= expiration <= EXPIRATION_MAX:
        raise invalid('an expiration must be whole seconds from 1 to %d', EXPIRATION_MAX)
    return expiration


def to_json(value: Any) -> str:
    try:
        text = json.dumps(value, allow_nan=False, separators=(',', ':'))
    except (TypeError, ValueError) as e:
        raise invalid('a value is not JSON: %s', e) from None
    if len(text) > VALUE_MAX:  # ASCII (json.dumps escapes the rest), so characters are bytes
        raise invalid('a value has %d bytes as JSON, more than %d', len(text), VALUE_MAX)
    return text


def check_flag(flag: Any, what: str) -> bool:
    if not isinstance(flag, bool):
        raise invalid('`%s` must be true or false', what)
    return flag


def check_many(items: Any) -> list[Any]:
    if not isinstance(items, list | tuple) or not 1 <= len(items) <= MANY_MAX:
        raise invalid('a _many call takes a list of 1 to %d items', MANY_MAX)
    return list(items)


def _time(ts: float | None, serialize_dt: bool) -> Any:
    if ts is None:
        return None
    return iso(ts) if serialize_dt else datetime.fromtimestamp(ts, UTC)


@dataclass(frozen=True)
class Attr:
    """One attribute as `get` answers it (3.1's AttrEntity): times as aware datetimes in UTC, or as
    ISO 8601 strings with serialize_dt; `expiration_time` None for one that never expires."""
    name: str
    value: Any
    creation_time: Any
    last_modified: Any
    expiration_time: Any
    is_encrypted: bool

    def to_dict(self) -> dict[str, Any]:
        return {'name': self.name, 'value': self.value, 'creation_time': self.creation_time,
                'last_modified': self.last_modified, 'expiration_time': self.expiration_time,
                'is_encrypted': self.is_encrypted}


@dataclass(frozen=True)
class _Write:
    """One checked write: the name, what the ODB is to hold, and the expiration (None: never; or not given)."""
    name: str
    stored: str
    is_encrypted: bool
    expiration: Any


class Attrs:
    """The attributes of one user (`session_pk` None) or of one session of the user."""

    def __init__(self, ctx: SSOContext, user_pk: int, session_pk: int | None = None) -> None:
        self.ctx = ctx
        self.user_pk = user_pk
        self.session_pk = session_pk

    # Reading

    def get(self, name: Any, decrypt: bool = True, serialize_dt: bool = False) -> Attr | None:
        """The attribute, or None if there is none (or it has expired)."""
        return self.get_many([name], decrypt, serialize_dt)[check_name(name)]

    def get_many(self, names: Any, decrypt: bool = True, serialize_dt: bool = False) -> dict[str, Attr | None]:
        """{name: the attribute or None} for each name."""
        wanted = self._names(names)
        check_flag(decrypt, 'decrypt')
        check_flag(serialize_dt, 'serialize_dt')
        out: dict[str, Attr | None] = dict.fromkeys(wanted)
        with self.ctx.Session() as session:
            rows = session.scalars(select(SSOAttr).where(self._owner(), SSOAttr.name.in_(wanted),
                                                         self._live(self.ctx.clock())))
            for row in rows:
                out[row.name] = self._entity(row, decrypt, serialize_dt)
        return out

    def exists(self, name: Any) -> bool:
        return self.exists_many([name])[check_name(name)]

    def exists_many(self, names: Any) -> dict[str, bool]:
        wanted = self._names(names)
        with self.ctx.Session() as session:
            found = set(session.scalars(select(SSOAttr.name).where(self._owner(), SSOAttr.name.in_(wanted),
                                                                   self._live(self.ctx.clock()))))
        return {name: name in found for name in wanted}

    def names(self) -> list[str]:
        """The names of every live attribute, sorted."""
        with self.ctx.Session() as session:
            return sorted(session.scalars(select(SSOAttr.name).where(self._owner(), self._live(self.ctx.clock()))))

    # Writing

    def create(self, name: Any, value: Any, expiration: Any = None, encrypt: Any = False) -> None:
        """A new attribute; E009001 if it exists."""
        self._run(self._create, [self._write(name, value, expiration, encrypt)])

    def update(self, name: Any, value: Any, expiration: Any = _NOT_GIVEN, encrypt: Any = False) -> None:
        """A new value (and expiration, when given) of an attribute; E009002 if there is none."""
        self._run(self._update, [self._write(name, value, expiration, encrypt)])

    def set(self, name: Any, value: Any, expiration: Any = _NOT_GIVEN, encrypt: Any = False) -> None:
        """Creates the attribute or replaces its value (and expiration, when given)."""
        self._run(self._set, [self._write(name, value, expiration, encrypt)])

    def delete(self, name: Any) -> None:
        """E009002 if there is no such attribute."""
        self.delete_many([name])

    def create_many(self, data: Any, expiration: Any = None, encrypt: Any = False) -> None:
        """Each item of `data` is {name, value, expiration?, encrypt?}; the call's own expiration and
        encrypt are the defaults of the items."""
        self._run(self._create, self._writes(data, expiration, encrypt))

    def update_many(self, data: Any, expiration: Any = _NOT_GIVEN, encrypt: Any = False) -> None:
        self._run(self._update, self._writes(data, expiration, encrypt))

    def set_many(self, data: Any, expiration: Any = _NOT_GIVEN, encrypt: Any = False) -> None:
        self._run(self._set, self._writes(data, expiration, encrypt))

    def delete_many(self, names: Any) -> None:
        wanted = self._names(names)
        with self.ctx.Session() as session:
            now = self.ctx.clock()
            for name in wanted:
                deleted = session.execute(delete(SSOAttr).where(self._owner(), SSOAttr.name == name,
                                                                self._live(now))).rowcount
                if not deleted:
                    raise SSOError(status_code.attr.no_such_attr)
            session.commit()

    # Checking input

    def _names(self, names: Any) -> list[str]:
        wanted = [check_name(name) for name in check_many(names)]
        if len(set(wanted)) != len(wanted):
            raise invalid('a name is given twice')
        return wanted

    def _write(self, name: Any, value: Any, expiration: Any, encrypt: Any) -> _Write:
        name = check_name(name)
        if expiration is not _NOT_GIVEN:
            expiration = check_expiration(expiration)
        text = to_json(value)
        if check_flag(encrypt, 'encrypt'):
            return _Write(name, self.ctx.cipher.encrypt(text), True, expiration)
        return _Write(name, text, False, expiration)

    def _writes(self, data: Any, expiration: Any, encrypt: Any) -> list[_Write]:
        writes = []
        for item in check_many(data):
            if not isinstance(item, dict):
                raise invalid('an item of a _many call must be an object')
            if 'value' not in item:
                raise SSOError(status_code.common.missing_input)
            writes.append(self._write(item.get('name'), item['value'], item.get('expiration', expiration),
                                      item.get('encrypt', encrypt)))
        if len({write.name for write in writes}) != len(writes):
            raise invalid('a name is given twice')
        return writes

    # The statements

    def _owner(self) -> Any:
        if self.session_pk is None:
            return and_(SSOAttr.user_id == self.user_pk, SSOAttr.session_id.is_(None))
        return SSOAttr.session_id == self.session_pk

    @staticmethod
    def _live(now: float) -> Any:
        return or_(SSOAttr.expiration_time.is_(None), SSOAttr.expiration_time > now)

    def _run(self, statement: Callable[[Any, _Write, float], int], writes: Iterable[_Write]) -> None:
        with self.ctx.Session() as session:
            now = self.ctx.clock()
            try:
                for write in writes:
                    if not statement(session, write, now):
                        raise SSOError(status_code.attr.already_exists if statement == self._create
                                       else status_code.attr.no_such_attr)
                session.commit()
            except IntegrityError:
                # No unique key can be broken (the inserts are upserts): the owner's row has gone
                session.rollback()
                raise SSOError(status_code.session.no_such_session) from None

    def _insert(self, session: Any, write: _Write, now: float) -> Any:
        insert = sqlite_insert if session.get_bind().dialect.name == 'sqlite' else pg_insert
        expiration = None if write.expiration in (None, _NOT_GIVEN) else now + write.expiration
        return insert(SSOAttr).values(
            cluster_id=self.ctx.cluster_id, user_id=self.user_pk, session_id=self.session_pk, name=write.name,
            value=write.stored, is_encrypted=write.is_encrypted, creation_time=now, last_modified=now,
            expiration_time=expiration)

    def _conflict(self, stmt: Any, set_: dict[str, Any], where: Any = None) -> Any:
        if self.session_pk is None:
            return stmt.on_conflict_do_update(index_elements=['user_id', 'name'],
                                              index_where=SSOAttr.session_id.is_(None), set_=set_, where=where)
        return stmt.on_conflict_do_update(index_elements=['session_id', 'name'], set_=set_, where=where)

    def _create(self, session: Any, write: _Write, now: float) -> int:
        """Inserts; over an expired attribute, replaces it; over a live one, changes nothing (0 rows)."""
        stmt = self._insert(session, write, now)
        new = stmt.excluded
        set_ = {'value': new.value, 'is_encrypted': new.is_encrypted, 'creation_time': new.creation_time,
                'last_modified': new.last_modified, 'expiration_time': new.expiration_time}
        expired = and_(_table.c.expiration_time.is_not(None), _table.c.expiration_time <= now)
        return session.execute(self._conflict(stmt, set_, expired)).rowcount

    def _set(self, session: Any, write: _Write, now: float) -> int:
        stmt = self._insert(session, write, now)
        new = stmt.excluded
        expired = and_(_table.c.expiration_time.is_not(None), _table.c.expiration_time <= now)
        # An expired attribute that is set anew is a new one: its old times go
        set_ = {'value': new.value, 'is_encrypted': new.is_encrypted, 'last_modified': new.last_modified,
                'creation_time': case((expired, new.creation_time), else_=_table.c.creation_time)}
        if write.expiration is _NOT_GIVEN:
            set_['expiration_time'] = case((expired, None), else_=_table.c.expiration_time)
        else:
            set_['expiration_time'] = new.expiration_time
        session.execute(self._conflict(stmt, set_))
        return 1

    def _update(self, session: Any, write: _Write, now: float) -> int:
        values: dict[str, Any] = {'value': write.stored, 'is_encrypted': write.is_encrypted, 'last_modified': now}
        if write.expiration is not _NOT_GIVEN:
            values['expiration_time'] = None if write.expiration is None else now + write.expiration
        stmt = update(SSOAttr).where(self._owner(), SSOAttr.name == write.name, self._live(now)).values(values)
        return session.execute(stmt).rowcount

    def _entity(self, row: SSOAttr, decrypt: bool, serialize_dt: bool) -> Attr:
        if row.is_encrypted and not decrypt:
            value: Any = row.value
        else:
            value = json.loads(self.ctx.cipher.decrypt(row.value) if row.is_encrypted else row.value)
        return Attr(row.name, value, _time(row.creation_time, serialize_dt), _time(row.last_modified, serialize_dt),
                    _time(row.expiration_time, serialize_dt), row.is_encrypted)


class WithAttrs(dict[str, Any]):
    """A user or a session as the API answers it (a dict), with its attributes as `.attr`, as 3.1's
    user and session entities had them."""

    def __init__(self, data: dict[str, Any], attr: Attrs) -> None:
        super().__init__(data)
        self.attr = attr
