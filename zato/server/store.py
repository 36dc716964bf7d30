"""The service store of one worker: imports service modules from source and keeps name -> class."""

from __future__ import annotations

import importlib
import linecache
import logging
import sys
import traceback
from types import ModuleType
from collections.abc import Iterable

from zato.errors import DeploymentError, Inactive, ServiceNotFound
from zato.security.json_schema import SchemaError, SchemaRepository
from zato.service.base import Service, overridden_hooks, verb_handlers
from zato.service.naming import derive_name
from zato.service.sio import SIODefinitionError, compile_sio

logger = logging.getLogger('zato.store')

DONT_DEPLOY_ATTR = 'zato_dont_import'


def module_name_of(file_name: str) -> str:
    if not file_name.endswith('.py') or '/' in file_name or file_name.startswith('.'):
        raise DeploymentError(f'{file_name}: expected a flat .py module file name')
    stem = file_name[:-3]
    if not stem.isidentifier():
        raise DeploymentError(f'{file_name}: `{stem}` is not a valid Python module name')
    return stem


def describe_import_error(file_name: str, exc: BaseException) -> str:
    """One clear line: the file, the line number in that file, and the error."""
    if isinstance(exc, SyntaxError) and exc.filename == file_name:
        return f'{file_name}, line {exc.lineno}: SyntaxError: {exc.msg}'
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename == file_name:
            line = frame.lineno
    where = f', line {line}' if line else ''
    return f'{file_name}{where}: {type(exc).__name__}: {exc}'


def prepare_class(cls: type[Service], module_name: str, schemas: SchemaRepository | None = None) -> None:
    """Fills in what the request path needs, once: name, compiled SimpleIO and JSON Schema, hooks, verbs."""
    own_name = cls.__dict__.get('name')
    if not own_name:
        cls.name = derive_name(module_name, cls.__name__)
    if 'zato' in cls.name.split('.')[0] and not module_name.startswith('zato.'):
        raise DeploymentError(f'{cls.name}: service names starting with `zato` are reserved')
    cls.impl_name = f'{module_name}.{cls.__name__}'
    try:
        cls._sio = compile_sio(cls.__dict__.get('SimpleIO', getattr(cls, 'SimpleIO', None)), cls.name)
    except SIODefinitionError as e:
        raise DeploymentError(str(e)) from None  # the message names the service already
    schema_name = cls.__dict__.get('schema', getattr(cls, 'schema', None))
    cls._schema = None
    if schema_name:
        if schemas is None:
            raise DeploymentError(f'{cls.name}: declares schema `{schema_name}` but no schema directory is set')
        try:
            cls._schema = schemas.compile(schema_name)
        except SchemaError as e:
            # Refused rather than served without its check
            raise DeploymentError(f'{cls.name}: JSON Schema {e}') from None
    cls._hooks = overridden_hooks(cls)
    cls._verbs = verb_handlers(cls)
    cls._logger = logging.getLogger(cls.name)


def services_in(module: ModuleType) -> list[type[Service]]:
    """Service classes defined in the module itself (not merely imported into it)."""
    found = []
    for value in vars(module).values():
        if (isinstance(value, type) and issubclass(value, Service) and value is not Service
                and value.__module__ == module.__name__ and not value.__dict__.get(DONT_DEPLOY_ATTR)):
            found.append(value)
    return found


class ServiceStore:
    """Name -> service class, per worker. Deploys replace a module's services in place."""

    def __init__(self, schemas: SchemaRepository | None = None, schema_details: bool = False) -> None:
        self.schemas = schemas
        self.schema_details = schema_details  # server-wide default of needs_json_schema_err_details
        self.options: dict[str, dict] = {}    # per-service options from the ODB, applied on every deploy
        self.services: dict[str, type[Service]] = {}
        self.file_of: dict[str, str] = {}           # service name -> the file it came from
        self.names_in: dict[str, list[str]] = {}    # file name -> service names
        self.inactive: set[str] = set()             # names whose stored is_active is false

    def get(self, name: str) -> type[Service]:
        """The class to run for `name`: ServiceNotFound if none is deployed, Inactive if it is switched off."""
        try:
            cls = self.services[name]
        except KeyError:
            raise ServiceNotFound(name) from None
        if self.inactive and name in self.inactive:
            raise Inactive(name)
        return cls

    def name_of_impl(self, impl_name: str) -> str:
        """The name of the deployed service whose class is `impl_name`; ServiceNotFound if none."""
        for name, cls in self.services.items():
            if cls.impl_name == impl_name:
                return name
        raise ServiceNotFound(impl_name)

    def set_active(self, name: str, is_active: bool) -> None:
        if is_active:
            self.inactive.discard(name)
        else:
            self.inactive.add(name)

    def __contains__(self, name: str) -> bool:
        return name in self.services

    def load_module(self, file_name: str, source: str) -> tuple[ModuleType, list[type[Service]]]:
        """Imports source as a module and prepares its services, without registering anything.

        Raises DeploymentError with a one-line reason; the previously deployed version stays.
        """
        module_name = module_name_of(file_name)
        existing = sys.modules.get(module_name)
        if existing is not None and not getattr(existing, '__zato_deployed__', False):
            raise DeploymentError(f'{file_name}: the module name `{module_name}` would shadow an installed module')
        # A package the module imports may have been installed since the finders last looked (or its
        # directory on sys.path created): forget what they remember, or the import would fail again
        importlib.invalidate_caches()
        module = ModuleType(module_name)
        module.__file__ = file_name
        module.__zato_deployed__ = True  # type: ignore[attr-defined]
        linecache.cache[file_name] = (len(source), None, source.splitlines(True), file_name)
        try:
            code = compile(source, file_name, 'exec')
            exec(code, module.__dict__)  # noqa: S102 - deploying user code is the point
        except Exception as e:  # noqa: BLE001 - any import failure of user code is reported, not raised
            raise DeploymentError(describe_import_error(file_name, e)) from None
        classes = services_in(module)
        for cls in classes:
            try:
                prepare_class(cls, module_name, self.schemas)
            except DeploymentError as e:
                raise DeploymentError(f'{file_name}: {e}') from None
            if not cls.before_add_to_store(logger):
                classes = [c for c in classes if c is not cls]
        self._check_conflicts(file_name, classes)
        return module, classes

    def _check_conflicts(self, file_name: str, classes: Iterable[type[Service]]) -> None:
        seen: dict[str, str] = {}
        for cls in classes:
            if cls.name in seen:
                raise DeploymentError(f'{file_name}: two classes are named `{cls.name}` '
                                      f'({seen[cls.name]} and {cls.__name__})')
            seen[cls.name] = cls.__name__
            other = self.file_of.get(cls.name)
            if other is not None and other != file_name:
                raise DeploymentError(f'{file_name}: service `{cls.name}` is already deployed from {other}')

    def register(self, file_name: str, module: ModuleType, classes: list[type[Service]]) -> list[str]:
        """Makes a loaded module live, replacing whatever the same file deployed before."""
        for name in self.names_in.pop(file_name, []):
            self.services.pop(name, None)
            self.file_of.pop(name, None)
        names = []
        for cls in classes:
            self.services[cls.name] = cls
            self.file_of[cls.name] = file_name
            self._apply_options(cls)
            names.append(cls.name)
            try:
                cls.after_add_to_store(logger)
            except Exception:
                logger.exception('after_add_to_store of %s failed', cls.name)
        self.names_in[file_name] = names
        sys.modules[module.__name__] = module
        return names

    def _apply_options(self, cls: type[Service]) -> None:
        opts = self.options.get(cls.name, {})
        cls._schema_enabled = bool(opts.get('is_json_schema_enabled', True))
        cls._schema_details = bool(opts.get('needs_json_schema_err_details', self.schema_details))

    def set_options(self, name: str, options: dict) -> None:
        """Per-service options (JSON Schema switches), live: no redeploy."""
        self.options[name] = options
        cls = self.services.get(name)
        if cls is not None:
            self._apply_options(cls)

    def recompile_schemas(self, changed: str) -> list[str]:
        """Recompiles the validators of services whose schema uses `changed`; returns their names.

        A service whose schema no longer compiles keeps its previous validator (and it is logged):
        it is never left without its check.
        """
        done = []
        for name, cls in self.services.items():
            schema = cls._schema
            if schema is None or changed not in schema.deps or self.schemas is None:
                continue
            try:
                cls._schema = self.schemas.compile(schema.name)
                done.append(name)
            except SchemaError as e:
                logger.error('JSON Schema of %s not recompiled, the previous one stays in force: %s', name, e)
        return done

    def deploy(self, file_name: str, source: str, skip: Iterable[str] = ()) -> list[str]:
        """Loads and registers a module; the services named in `skip` (undeployed one by one through
        zato.service.delete while the module's others stay) are left out."""
        module, classes = self.load_module(file_name, source)
        if skip:
            left_out = set(skip)
            classes = [cls for cls in classes if cls.name not in left_out]
        return self.register(file_name, module, classes)

    def remove_file(self, file_name: str) -> None:
        for name in self.names_in.pop(file_name, []):
            self.services.pop(name, None)
            self.file_of.pop(name, None)
            self.inactive.discard(name)  # deployed again, it is a new service, active
        stem = file_name[:-3]
        module = sys.modules.get(stem)
        if module is not None and getattr(module, '__zato_deployed__', False):
            del sys.modules[stem]

    def add_internal(self, module: ModuleType) -> None:
        """Internal (zato.*) services ship with the server and are prepared like any other."""
        classes = services_in(module)
        for cls in classes:
            prepare_class(cls, module.__name__, self.schemas)
            self._apply_options(cls)
            self.services[cls.name] = cls
            self.file_of[cls.name] = module.__name__
