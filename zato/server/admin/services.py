"""Internal services behind the admin API (/zato/admin/...), named as in Zato 3.1."""

from __future__ import annotations

import os
from typing import Any

from sqlalchemy import delete, select

from zato.errors import BadRequest, Conflict, DeploymentError, NotFound
from zato.odb.models import ChannelREST, ChannelWSX, DeployedCode, RateLimitDef, Service as ServiceRow
from zato.server.admin.base import AdminService
from zato.server.admin.cache import apply_channel_cache, channel_cache_fields
from zato.server.admin.crud import CRUD, Create, Delete, Edit, Get, GetList
from zato.server.admin.rate_limits import resolve_limit
from zato.server.hot_deploy import UNDEPLOYED, deploy_source
from zato.server.router import template_of
from zato.service.base import Service
from zato.service.sio import CompiledSIO
from zato.service.sio_types import NOT_GIVEN

DATA_FORMATS = ('json', '')
URL_PARAMS_PRI = ('qs-over-path', 'path-over-qs')
PARAMS_PRI = ('channel-params-over-msg', 'msg-over-channel-params')
METHODS = ('', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS')


class Ping(Service):
    """Health check for load balancers: GET /zato/ping."""
    name = 'zato.ping'

    def handle(self) -> None:
        self.response.payload = {'pong': 'zato'}


class InvokeService(AdminService):
    """Invokes any service by name: {"name": ..., "payload": ..., "async": false}; its output, or a 204
    with no body if it returned nothing."""
    name = 'zato.service.invoke'

    def handle(self) -> None:
        data = self.input_dict()
        name = self.field(data, 'name', str)
        if name not in self.server.store:
            raise NotFound(f'Service `{name}` not found')
        payload = data.get('payload')
        if self.field(data, 'async', bool, required=False, default=False):
            self.response.payload = {'cid': self.invoke_async(name, payload)}
            return
        output = self.server.invoker.invoke(name, payload, cid=self.cid)
        if output is None or output in ('', b''):
            # The service returned nothing: so does this, rather than inventing {"response": ""}
            self.response.status_code = 204
            self.response.payload = None
            return
        self.response.payload = output if isinstance(output, (dict, list)) else {'response': output}


class GetServiceList(AdminService):
    name = 'zato.service.get-list'

    def handle(self) -> None:
        store = self.server.store
        self.response.payload = [
            {'name': name, 'impl_name': cls.impl_name, 'file_name': store.file_of.get(name, ''),
             'is_internal': name.startswith('zato.'), 'is_active': name not in store.inactive}
            for name, cls in sorted(store.services.items())]


def sio_to_dict(sio: CompiledSIO | None) -> dict[str, Any] | None:
    """A SimpleIO declaration as data: each element's name, type and default (its Python repr), and the flags."""
    if sio is None:
        return None

    def elements(declared: tuple[Any, ...]) -> list[dict[str, Any]]:
        return [{'name': e.name, 'type': type(e).__name__,
                 'default': None if e.default is NOT_GIVEN else repr(e.default)} for e in declared]

    return {'input_required': elements(sio.input_required), 'input_optional': elements(sio.input_optional),
            'output_required': elements(sio.output_required), 'output_optional': elements(sio.output_optional),
            'response_elem': sio.response_elem, 'output_repeated': sio.output_repeated,
            'skip_empty_keys': sio.skip_empty_keys, 'allow_empty_required': sio.allow_empty_required,
            'use_channel_params_only': sio.use_channel_params_only, 'params_priority': sio.params_priority}


class GetService(AdminService):
    """A deployed service: its options, SimpleIO, rate limit and the source of the module it came from."""
    name = 'zato.service.get'

    def handle(self) -> None:
        name = self.name_input(self.input_dict())
        store = self.server.store
        if not name or name not in store:
            raise NotFound(f'Service `{name}` not found')
        cls = store.services[name]
        source, limit, service_id = None, None, None
        with self.server.Session() as session:
            row = session.scalars(select(ServiceRow).where(ServiceRow.cluster_id == self.server.cluster_id,
                                                           ServiceRow.name == name)).one_or_none()
            if row is not None:
                service_id = row.id
                code = session.get(DeployedCode, row.code_id) if row.code_id is not None else None
                source = code.source if code is not None else None
                limit = session.get(RateLimitDef, row.rate_limit_id) if row.rate_limit_id is not None else None
        self.response.payload = {'id': service_id, 'name': name, 'impl_name': cls.impl_name,
                                 'file_name': store.file_of.get(name, ''), 'is_internal': name.startswith('zato.'),
                                 'is_active': name not in store.inactive,
                                 'http_verbs': sorted(cls._verbs), 'has_simple_io': cls._sio is not None,
                                 'simple_io': sio_to_dict(cls._sio),
                                 'schema': cls._schema.name if cls._schema else None,
                                 'is_json_schema_enabled': cls._schema_enabled,
                                 'needs_json_schema_err_details': cls._schema_details,
                                 'rate_limit_id': limit.id if limit is not None else None,
                                 'rate_limit': limit.name if limit is not None else None,
                                 'source': source}


def service_row(service: AdminService, session: Any, name: str | None) -> ServiceRow:
    """The ODB row of a deployed (not internal) service, or NotFound."""
    if not name:
        raise BadRequest('Missing input `name`')
    row = session.scalars(select(ServiceRow).where(ServiceRow.cluster_id == service.server.cluster_id,
                                                   ServiceRow.name == name)).one_or_none()
    if row is None or (row.opaque or {}).get(UNDEPLOYED):
        if name.startswith('zato.') and name in service.server.store:
            raise BadRequest(f'Service `{name}` is internal: it cannot be changed or deleted')
        raise NotFound(f'Service `{name}` not found')
    return row


class EditService(AdminService):
    """Per-service options that change live on every worker, with no redeploy:
    {"is_active": bool, "is_json_schema_enabled": bool, "needs_json_schema_err_details": bool, "rate_limit": ...}.
    An inactive service answers 404 on its channels and raises zato.errors.Inactive on invoke."""
    name = 'zato.service.edit'

    OPTIONS = ('is_json_schema_enabled', 'needs_json_schema_err_details')

    def handle(self) -> None:
        data = self.input_dict()
        name = self.name_input(data)
        unknown = sorted(set(data) - {'name', 'rate_limit', 'is_active', *self.OPTIONS})
        if unknown:
            raise BadRequest(f'Unknown input `{unknown[0]}`; expected: is_active, {", ".join(self.OPTIONS)}, '
                             'rate_limit')
        with self.server.Session() as session:
            row = service_row(self, session, name)
            opaque = dict(row.opaque or {})
            for option in self.OPTIONS:
                if option in data:
                    opaque[option] = self.field(data, option, bool)
            row.opaque = opaque
            row.is_active = self.field(data, 'is_active', bool, False, row.is_active)
            row.rate_limit_id = resolve_limit(self, session, data, row.rate_limit_id)
            self.server.commit_change(session, 'service', row.id, name=name)
            self.response.payload = {'name': name, 'is_active': row.is_active, 'rate_limit_id': row.rate_limit_id,
                                     **{o: opaque[o] for o in self.OPTIONS if o in opaque}}


class DeleteService(AdminService):
    """Undeploys a hot-deployed service from every worker of the cluster (3.1's zato.service.delete). The
    last service of its module takes the module with it; otherwise the module stays, without this service,
    until a changed version of it is deployed. A copy left in a server's pickup directory is not deleted:
    the pickup watcher deploys it again only when it changes or the server restarts."""
    name = 'zato.service.delete'

    def handle(self) -> None:
        name = self.name_input(self.input_dict())
        with self.server.Session() as session:
            row = service_row(self, session, name)
            code = session.get(DeployedCode, row.code_id) if row.code_id is not None else None
            others = [] if code is None else [
                other for other in session.scalars(select(ServiceRow).where(ServiceRow.code_id == code.id,
                                                                            ServiceRow.id != row.id))
                if not (other.opaque or {}).get(UNDEPLOYED)]
            file_name = code.file_name if code is not None else ''
            if code is None or not others:
                # Nothing else comes from the module: it goes, and every worker forgets it
                session.execute(delete(ServiceRow).where(ServiceRow.id == row.id))
                if code is not None:
                    session.execute(delete(ServiceRow).where(ServiceRow.code_id == code.id))
                    session.delete(code)
                    session.flush()
                    self.server.commit_change(session, 'code', code.id, file_name=file_name)
                else:
                    self.server.commit_change(session, 'service', row.id, name=name)
                module_deleted = code is not None
            else:
                # The module stays for its other services: this one is left out of it on every worker
                row.opaque = {**(row.opaque or {}), UNDEPLOYED: True}
                code.version += 1
                session.flush()
                self.server.commit_change(session, 'code', code.id, file_name=file_name)
                module_deleted = False
        self.response.payload = {'name': name, 'file_name': file_name, 'module_deleted': module_deleted}


class HotDeploy(AdminService):
    """Deploys a module: {"file_name": "my_api.py", "source": "..."}."""
    name = 'zato.hot-deploy.create'

    def handle(self) -> None:
        data = self.input_dict()
        file_name = os.path.basename(self.field(data, 'file_name', str))
        source = self.field(data, 'source', str)
        who = self.channel.security.username if self.channel.security else 'admin'
        try:
            self.response.payload = deploy_source(self.server, file_name, source, deployed_by=who)
        except DeploymentError as e:
            raise BadRequest(str(e)) from None


def channel_to_dict(row: ChannelREST, sec_name: str | None) -> dict[str, Any]:
    return {'id': row.id, 'name': row.name, 'is_active': row.is_active, 'url_path': row.url_path,
            'method': row.method, 'data_format': row.data_format, 'service': row.service_name,
            'security': sec_name, 'merge_url_params_req': row.merge_url_params_req,
            'url_params_pri': row.url_params_pri, 'params_pri': row.params_pri,
            'rate_limit_id': row.rate_limit_id}


class _ChannelBase(CRUD):
    zato_dont_import = True

    model = ChannelREST
    label = 'REST channel'
    bus_kind = 'channel'

    def _new_row(self) -> ChannelREST:
        return ChannelREST(cluster_id=self.server.cluster_id, is_internal=False, version=1, opaque={},
                           url_path='/', service_name='', method='', data_format='json',
                           url_params_pri='qs-over-path', params_pri='channel-params-over-msg')

    def _apply(self, session: Any, row: ChannelREST, data: dict[str, Any], creating: bool) -> None:
        f = self.field
        self._apply_name(row, data, creating)
        row.url_path = self._url_path(row, data, creating)
        self._apply_service(session, row, data, creating)
        method = f(data, 'method', str, False, row.method or '').upper()
        if method not in METHODS:
            raise BadRequest(f'Invalid input `method`: expected one of {", ".join(m for m in METHODS if m)} or empty')
        row.method = method
        data_format = f(data, 'data_format', str, False, row.data_format if not creating else 'json')
        if data_format not in DATA_FORMATS:
            raise BadRequest('Invalid input `data_format`: expected `json` or empty')
        row.data_format = data_format
        row.is_active = f(data, 'is_active', bool, False, True if creating else row.is_active)
        row.merge_url_params_req = f(data, 'merge_url_params_req', bool, False,
                                     True if creating else row.merge_url_params_req)
        pri = f(data, 'url_params_pri', str, False, row.url_params_pri or 'qs-over-path')
        if pri not in URL_PARAMS_PRI:
            raise BadRequest(f'Invalid input `url_params_pri`: expected one of {", ".join(URL_PARAMS_PRI)}')
        row.url_params_pri = pri
        pri = f(data, 'params_pri', str, False, row.params_pri or 'channel-params-over-msg')
        if pri not in PARAMS_PRI:
            raise BadRequest(f'Invalid input `params_pri`: expected one of {", ".join(PARAMS_PRI)}')
        row.params_pri = pri
        row.security_id = self.resolve_security(session, data, row.security_id)
        row.rate_limit_id = resolve_limit(self, session, data, row.rate_limit_id)
        apply_channel_cache(self, session, row, data)
        self._check_route_free(session, row)

    def _check_route_free(self, session: Any, row: ChannelREST) -> None:
        if row.url_path.startswith('/zato/'):
            raise BadRequest('Invalid input `url_path`: paths under /zato/ are reserved')
        # One template whatever its parameters are called: /a/{x} and /a/{y} would leave the choice to row order
        template = template_of(row.url_path)
        same_method = session.scalars(select(ChannelREST).where(
            ChannelREST.cluster_id == self.server.cluster_id, ChannelREST.method == row.method,
            ChannelREST.id != (row.id or -1))).all()
        clash = next((other for other in same_method if template_of(other.url_path) == template), None)
        if clash is not None:
            what = f'`{row.url_path}`' if clash.url_path == row.url_path else \
                f'`{clash.url_path}`, the same template as `{row.url_path}`'
            raise Conflict(f'Channel `{clash.name}` already serves {row.method or "any method"} on {what}')
        wsx = session.scalars(select(ChannelWSX).where(ChannelWSX.cluster_id == self.server.cluster_id,
                                                       ChannelWSX.url_path == row.url_path)).first()
        if wsx is not None:
            raise Conflict(f'WebSocket channel `{wsx.name}` already serves `{row.url_path}`')

    def _to_dict(self, session: Any, row: ChannelREST) -> dict[str, Any]:
        return {**channel_to_dict(row, self._sec_name(session, row.security_id)), **channel_cache_fields(session, row)}

    def _list_where(self) -> tuple[Any, ...]:
        return (ChannelREST.is_internal.is_(False),)


class CreateChannel(_ChannelBase, Create):
    name = 'zato.channel.rest.create'


class EditChannel(_ChannelBase, Edit):
    name = 'zato.channel.rest.edit'


class DeleteChannel(_ChannelBase, Delete):
    name = 'zato.channel.rest.delete'


class GetChannel(_ChannelBase, Get):
    name = 'zato.channel.rest.get'


class GetChannelList(_ChannelBase, GetList):
    name = 'zato.channel.rest.get-list'
