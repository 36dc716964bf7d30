"""Create, edit, delete, get and get-list of one kind of admin object (a channel, a definition, a
connection), written once for every kind.

A module describes its kind in a subclass of CRUD: the model, the label its messages use, the kind
the cluster bus announces, and how a row is made (`_new_row`), checked and filled from the input
(`_apply`) and shown (`_to_dict`). Each service is then that subclass and one of Create, Edit,
Delete, Get or GetList, with its name:

    class _WSXBase(CRUD):
        zato_dont_import = True
        model = ChannelWSX
        label = 'WebSocket channel'
        bus_kind = 'channel_wsx'
        ...  # _new_row, _apply, _to_dict

    class CreateWSXChannel(_WSXBase, Create):
        name = 'zato.channel.web-socket.create'
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import select

from zato.errors import BadRequest
from zato.server.admin.base import AdminService
from zato.server.router import RouteError, validate_url_path

MAX_NAME = 200


class CRUD(AdminService):
    """One kind of admin object: what the five generic services need to know of it."""

    zato_dont_import = True

    # The ODB model, with `id`, `cluster_id`, `name` and `version` columns
    model: ClassVar[type[Any]]

    # The kind as a sentence names it: a 404 is `<Label> 5 not found`, a 409 `A <label> named `x` already exists`
    label: ClassVar[str]

    # What commit_change and delete_object tell every worker has changed
    bus_kind: ClassVar[str]

    # What each kind says for itself

    def _new_row(self) -> Any:
        """A row for a create, its columns at their defaults before the input is applied."""
        raise NotImplementedError

    def _apply(self, session: Any, row: Any, data: dict[str, Any], creating: bool) -> None:
        """Checks the input and sets it on the row: the required fields on a create, any on an edit."""
        raise NotImplementedError

    def _to_dict(self, session: Any, row: Any) -> dict[str, Any]:
        """The row as the API shows it, never with a secret."""
        raise NotImplementedError

    def _list_where(self) -> tuple[Any, ...]:
        """What a listed row meets besides being of this cluster."""
        return ()

    def _check_flushed(self, session: Any, row: Any) -> None:
        """Refuses (rolling back) what the flush could not: runs after it, so a new row has its id."""

    def _check_unused(self, session: Any, row: Any) -> None:
        """Refuses to delete a row that others still use."""

    # What every kind does alike

    def _named(self, row: Any) -> str:
        """How a 409 for a name already taken begins."""
        return f'A {self.label} named `{row.name}`'

    def _get_row(self, session: Any) -> Any:
        return self.get_object(session, self.model, self.label[:1].upper() + self.label[1:])

    def _list_rows(self, session: Any) -> Sequence[Any]:
        model = self.model
        return session.scalars(select(model).where(model.cluster_id == self.server.cluster_id, *self._list_where())
                               .order_by(model.name)).all()

    def _commit(self, session: Any, row: Any, action: str) -> None:
        self.flush_or_conflict(session, self._named(row))
        self._check_flushed(session, row)
        self.server.commit_change(session, self.bus_kind, row.id, action=action)

    # Fields many kinds share, checked alike

    def _apply_name(self, row: Any, data: dict[str, Any], creating: bool) -> None:
        row.name = self.field(data, 'name', str, creating, row.name)
        if not row.name or len(row.name) > MAX_NAME:
            raise BadRequest(f'Invalid input `name`: expected 1 to {MAX_NAME} characters')

    def _url_path(self, row: Any, data: dict[str, Any], creating: bool) -> str:
        """Input `url_path` (or the row's), checked as the router would check it; not yet set on the row."""
        url_path: str = self.field(data, 'url_path', str, creating, row.url_path)
        try:
            validate_url_path(url_path)
        except RouteError as e:
            raise BadRequest(f'Invalid input `url_path`: {e}') from None
        return url_path

    def _apply_service(self, session: Any, row: Any, data: dict[str, Any], creating: bool) -> None:
        """Input `service`: a service deployed, or known to the ODB; one kept from before is not checked again."""
        service = self.field(data, 'service', str, creating, row.service_name)
        if service != row.service_name and not self._service_exists(session, service):
            raise BadRequest(f'Invalid input `service`: service `{service}` is not deployed')
        row.service_name = service


class Create(CRUD):
    """A new row from the input: 201 with the row."""

    zato_dont_import = True

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._new_row()
            self._apply(session, row, data, creating=True)
            session.add(row)
            self._commit(session, row, 'create')
            self.response.status_code = 201
            self.response.payload = self._to_dict(session, row)


class Edit(CRUD):
    """The fields given change, the others keep their values; the row's version goes up."""

    zato_dont_import = True

    def handle(self) -> None:
        data = self.input_dict()
        with self.server.Session() as session:
            row = self._get_row(session)
            # No autoflush while the input is checked: a query of a check (a route clash ...) must not
            # flush a half-applied row into a unique constraint, which would be a 500, not the 409 below
            with session.no_autoflush:
                self._apply(session, row, data, creating=False)
            row.version += 1
            self._commit(session, row, 'edit')
            self.response.payload = self._to_dict(session, row)


class Delete(CRUD):
    """Deletes the row unless something uses it: {"id": ..., "deleted": true}."""

    zato_dont_import = True

    def handle(self) -> None:
        with self.server.Session() as session:
            row = self._get_row(session)
            self._check_unused(session, row)
            self.delete_object(session, row, self.bus_kind)


class Get(CRUD):
    """The row named by `id`."""

    zato_dont_import = True

    def handle(self) -> None:
        with self.server.Session() as session:
            self.response.payload = self._to_dict(session, self._get_row(session))


class GetList(CRUD):
    """Every row of the cluster, by name."""

    zato_dont_import = True

    def handle(self) -> None:
        with self.server.Session() as session:
            self.response.payload = [self._to_dict(session, row) for row in self._list_rows(session)]
