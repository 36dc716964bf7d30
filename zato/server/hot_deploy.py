"""Hot-deploy: a service module dropped into the pickup directory (or sent with `zato deploy`)
is checked by importing it, stored in the ODB with its source and hash, and loaded by every
worker of every server through the cluster bus. A module that fails to import is reported and
the previous version keeps serving. User config INI files dropped into their own pickup directory
travel the same way (zato.service.user_config)."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

import gevent
from sqlalchemy import delete, select

from zato.errors import DeploymentError
from zato.odb.models import DeployedCode, Service as ServiceRow, utcnow
from zato.security.json_schema import SchemaError, SchemaRepository
from zato.server.store import ServiceStore
from zato.service.user_config import ODB_PREFIX, is_user_conf, parse as parse_user_conf

if TYPE_CHECKING:
    from zato.server.runtime import Runtime

logger = logging.getLogger('zato.hot_deploy')

UNDEPLOYED = 'undeployed'  # in service.opaque: undeployed by zato.service.delete while its module stays


def source_hash(source: str) -> str:
    return hashlib.sha256(source.encode('utf-8')).hexdigest()


def schemas_in_odb(runtime: Runtime) -> SchemaRepository:
    """The schemas as the ODB has them: this worker may not have heard of one deployed a moment ago
    through another worker, and a deployment must be checked against what the cluster will run."""
    assert runtime.store.schemas is not None
    repo = SchemaRepository(runtime.store.schemas.schema_dir)
    with runtime.Session() as session:
        rows = session.scalars(select(DeployedCode).where(DeployedCode.cluster_id == runtime.cluster_id,
                                                          DeployedCode.file_name.like('%.json'))).all()
        repo.deployed = {row.file_name: row.source for row in rows}
    return repo


def check_schema(runtime: Runtime, file_name: str, source: str) -> list[str]:
    """Compiles a JSON Schema, and every deployed service's schema that uses it, against the new
    text; raises DeploymentError if any of them fails. Returns the services it applies to."""
    trial = schemas_in_odb(runtime).with_overlay(file_name, source)
    try:
        trial.compile(file_name)
    except SchemaError as e:
        raise DeploymentError(str(e)) from None
    users = []
    for name, cls in runtime.store.services.items():
        if cls._schema is not None and file_name in cls._schema.deps:
            try:
                trial.compile(cls._schema.name)
            except SchemaError as e:
                raise DeploymentError(f'{file_name}: breaks the schema of service `{name}`: {e}') from None
            users.append(name)
    return users


def deploy_source(runtime: Runtime, file_name: str, source: str, deployed_by: str = '') -> dict:
    """Deploys one module (.py) or JSON Schema (.json) to the whole cluster; raises
    DeploymentError with a one-line reason."""
    if len(source.encode('utf-8')) > 5 * 1024 * 1024:
        raise DeploymentError(f'{file_name}: larger than 5 MiB')
    if file_name.endswith('.json'):
        if '/' in file_name or file_name.startswith('.'):
            raise DeploymentError(f'{file_name}: expected a plain .json file name')
        users = check_schema(runtime, file_name, source)
        return _store(runtime, file_name, source, deployed_by, [], services_using=users)
    # Import it in a scratch store first: a broken module never reaches the ODB
    _module, classes = ServiceStore(schemas_in_odb(runtime), runtime.store.schema_details).load_module(file_name,
                                                                                                     source)
    in_use = {name: other for name, other in runtime.store.file_of.items() if other != file_name}
    for cls in classes:
        if cls.name in in_use:
            raise DeploymentError(f'{file_name}: service `{cls.name}` is already deployed from {in_use[cls.name]}')

    return _store(runtime, file_name, source, deployed_by, classes)


def _store(runtime: Runtime, file_name: str, source: str, deployed_by: str, classes: list,
           services_using: list[str] | None = None) -> dict:
    digest = source_hash(source)
    with runtime.Session() as session:
        code = session.scalars(select(DeployedCode).where(DeployedCode.cluster_id == runtime.cluster_id,
                                                          DeployedCode.file_name == file_name)).one_or_none()
        if code is not None and code.source_hash == digest:
            # Nothing to store, but still announced: a worker whose import of this version failed (a
            # package it imports was missing then) has not got it loaded and tries again now; a
            # worker that has it loaded skips it (Runtime._apply_code compares versions)
            version = code.version
            runtime.commit_change(session, 'code', code.id, file_name=file_name)
            logger.info('Deployed %s (version %s, unchanged): every worker that has not got it loaded loads it',
                        file_name, version)
            return {'file_name': file_name, 'version': version, 'services': [c.name for c in classes],
                    'changed': False, **({'services_using': services_using} if services_using is not None else {})}
        if code is None:
            code = DeployedCode(cluster_id=runtime.cluster_id, file_name=file_name, version=0)
            session.add(code)
        code.source = source
        code.source_hash = digest
        code.version += 1
        code.deployed_at = utcnow()
        code.deployed_by = deployed_by
        session.flush()

        names = [cls.name for cls in classes]
        session.execute(delete(ServiceRow).where(ServiceRow.code_id == code.id, ServiceRow.name.not_in(names)))
        existing = {row.name: row for row in session.scalars(
            select(ServiceRow).where(ServiceRow.cluster_id == runtime.cluster_id, ServiceRow.name.in_(names)))}
        for cls in classes:
            row = existing.get(cls.name)
            if row is None:
                row = ServiceRow(cluster_id=runtime.cluster_id, name=cls.name, opaque={}, is_active=True)
                session.add(row)
            row.impl_name = cls.impl_name
            row.code_id = code.id
            if (row.opaque or {}).get(UNDEPLOYED):
                # A new version of its module brings back a service undeployed alone; is_active stays as set
                row.opaque = {key: value for key, value in row.opaque.items() if key != UNDEPLOYED}
        version = code.version
        code_id = code.id
        runtime.commit_change(session, 'code', code_id, file_name=file_name)
    if services_using is not None:
        logger.info('Deployed JSON Schema %s (version %s), used by: %s', file_name, version,
                    ', '.join(services_using) or 'no service yet')
        return {'file_name': file_name, 'version': version, 'services': [], 'services_using': services_using,
                'changed': True}
    logger.info('Deployed %s (version %s): %s', file_name, version, ', '.join(names) or 'no services')
    return {'file_name': file_name, 'version': version, 'services': names, 'changed': True}


def deploy_user_conf(runtime: Runtime, name: str, text: str, deployed_by: str = '') -> dict:
    """Stores a user config INI file in the ODB and has every worker of the cluster load it; raises
    DeploymentError if it is not valid INI (the previous version stays)."""
    if not is_user_conf(name):
        raise DeploymentError(f'{name}: expected a plain .ini or .conf file name')
    try:
        parse_user_conf(name, text)
    except ValueError as e:
        raise DeploymentError(str(e)) from None
    file_name = ODB_PREFIX + name
    with runtime.Session() as session:
        code = session.scalars(select(DeployedCode).where(DeployedCode.cluster_id == runtime.cluster_id,
                                                          DeployedCode.file_name == file_name)).one_or_none()
        if code is None:
            code = DeployedCode(cluster_id=runtime.cluster_id, file_name=file_name, version=0)
            session.add(code)
        code.source = text
        code.source_hash = source_hash(text)
        code.version += 1
        code.deployed_at = utcnow()
        code.deployed_by = deployed_by
        session.flush()
        version = code.version
        runtime.commit_change(session, 'code', code.id, file_name=file_name)
    logger.info('Deployed user config %s (version %s)', name, version)
    return {'file_name': name, 'version': version}


class PickupWatcher:
    """Watches the pickup directory. Every worker runs one, but only the holder of an flock on
    run/pickup.lock scans, so exactly one process per environment deploys each file; if the
    holder dies, the lock is released and another worker takes over."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.pickup_dir = runtime.config.path('hot_deploy', 'pickup_dir')
        self.user_conf_dir = runtime.config.path('hot_deploy', 'user_conf_dir')
        self.interval = runtime.config.get('hot_deploy', 'poll_interval')
        self.lock_path = os.path.join(runtime.env_dir, 'run', 'pickup.lock')
        self.seen: dict[str, tuple[int, int]] = {}
        self.failed: dict[str, str] = {}

    def _acquire(self) -> int:
        os.makedirs(os.path.dirname(self.lock_path), exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fd
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
            gevent.sleep(1.0)

    def run(self) -> None:
        self._acquire()  # held until the process exits
        logger.info('Watching %s for service modules', self.pickup_dir)
        os.makedirs(self.pickup_dir, exist_ok=True)
        os.makedirs(self.user_conf_dir, exist_ok=True)
        while True:
            for directory, deploy in ((self.pickup_dir, self.deploy_code), (self.user_conf_dir, self.deploy_conf)):
                try:
                    self.scan(directory, deploy)
                except Exception:
                    logger.exception('Scanning %s failed', directory)
            gevent.sleep(self.interval)

    def deploy_code(self, name: str, source: str) -> None:
        if name.endswith(('.py', '.json')):
            deploy_source(self.runtime, name, source, deployed_by='pickup')

    def deploy_conf(self, name: str, source: str) -> None:
        if is_user_conf(name):
            deploy_user_conf(self.runtime, name, source, deployed_by='pickup')

    def scan(self, directory: str, deploy: Callable[[str, str], None]) -> None:
        for entry in os.scandir(directory):
            if not entry.name.endswith(('.py', '.json', '.ini', '.conf')) or not entry.is_file():
                continue
            st = entry.stat()
            stamp = (st.st_mtime_ns, st.st_size)
            if self.seen.get(entry.path) == stamp:
                continue
            try:
                with open(entry.path, encoding='utf-8') as f:
                    source = f.read()
            except (OSError, UnicodeDecodeError) as e:
                logger.error('Could not read %s: %s', entry.path, e)
                self.seen[entry.path] = stamp
                continue
            if entry.stat().st_mtime_ns != st.st_mtime_ns:
                continue  # still being written; look again next round
            self.seen[entry.path] = stamp
            try:
                deploy(entry.name, source)
                self.failed.pop(entry.name, None)
            except DeploymentError as e:
                self.failed[entry.name] = str(e)
                logger.error('Hot-deploy of %s failed, the previous version keeps serving: %s', entry.path, e)
