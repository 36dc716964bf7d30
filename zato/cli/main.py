"""The `zato` command."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from zato import __version__
from zato.cli import admin_commands
from zato.errors import ZatoError


class ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        # One line and exit code 2, as for any other bad argument
        self.exit(2, f'zato: error: {message} (see `{self.prog} --help`)\n')


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog='zato', description='Zato: API integrations and backend services in Python.')
    p.add_argument('--version', action='version', version=f'Zato {__version__}')
    sub = p.add_subparsers(dest='command', required=True, parser_class=ArgumentParser)

    qs = sub.add_parser('quickstart', help='create a ready environment')
    qs_sub = qs.add_subparsers(dest='action', required=True, parser_class=ArgumentParser)
    c = qs_sub.add_parser('create', help='create an environment in PATH')
    c.add_argument('path')
    c.add_argument('--odb', choices=('sqlite', 'postgresql'), default='sqlite')
    c.add_argument('--odb-host', default='127.0.0.1')
    c.add_argument('--odb-port', type=int, default=5432)
    c.add_argument('--odb-user', default='')
    c.add_argument('--odb-password', default=os.environ.get('ZATO_ODB_PASSWORD', ''),
                   help='or set ZATO_ODB_PASSWORD')
    c.add_argument('--odb-db-name', default='zato')
    c.add_argument('--bus', choices=('local', 'postgresql'), default=None,
                   help='default: local for SQLite, postgresql for a PostgreSQL ODB')
    c.add_argument('--servers', type=int, default=1)
    c.add_argument('--workers', type=int, default=2)
    c.add_argument('--cluster-name', default='quickstart')
    c.add_argument('--host', default='127.0.0.1', help='listen address; 0.0.0.0 behind a load balancer')
    c.add_argument('--base-port', type=int, default=17010)
    c.add_argument('--web-admin-port', type=int, default=8183)
    c.add_argument('--start', action='store_true', help='start it once created, as `zato start` would')

    s = sub.add_parser('start', help='start the servers of an environment')
    s.add_argument('path')
    s.add_argument('--fg', action='store_true', help='stay in the foreground')

    s = sub.add_parser('stop', help='stop the servers of an environment (in-flight requests finish)')
    s.add_argument('path')

    s = sub.add_parser('info', help='show what runs in an environment')
    s.add_argument('path')
    s.add_argument('--format', choices=('text', 'json'), default='text')

    s = sub.add_parser('create', help='create a web-admin user')
    s_sub = s.add_subparsers(dest='what', required=True, parser_class=ArgumentParser)
    u = s_sub.add_parser('web-admin-user', help='a web-admin user; prints a random password once')
    u.add_argument('path')
    u.add_argument('username')
    u.add_argument('--password-stdin', action='store_true', help='read the password from stdin instead')

    s = sub.add_parser('update', help='change a web-admin user\'s password')
    s_sub = s.add_subparsers(dest='what', required=True, parser_class=ArgumentParser)
    u = s_sub.add_parser('password', help='a new password for a web-admin user; random and printed once')
    u.add_argument('path')
    u.add_argument('username')
    u.add_argument('--password-stdin', action='store_true', help='read the password from stdin instead')

    s = sub.add_parser('reset-totp-key', help='set a new TOTP key of a web-admin user and print it once')
    s.add_argument('path')
    s.add_argument('username')
    s.add_argument('--key', default=None, help='the base32 key to use instead of a random one')
    s.add_argument('--key-label', default=None, help='what authenticator apps show next to the code')

    s = sub.add_parser('check-config', help='check the configuration of an environment')
    s.add_argument('path')

    svc = sub.add_parser('service', help='services: invoke, list, get, edit their options')
    svc_sub = svc.add_subparsers(dest='action', required=True, parser_class=ArgumentParser)
    inv = svc_sub.add_parser('invoke', help='invoke a service through the admin API')
    inv.add_argument('path')
    inv.add_argument('name')
    inv.add_argument('--payload', default=None, help='JSON request')
    inv.add_argument('--async', dest='is_async', action='store_true', help='run in the background; prints the CID')

    sec = sub.add_parser('security', help='security definitions (Basic Auth, API keys, JWT)')
    sec_sub = sec.add_subparsers(dest='action', required=True, parser_class=ArgumentParser)
    s = sec_sub.add_parser('create', help='create a definition; prints its random secret once')
    s.add_argument('path')
    s.add_argument('name')
    s.add_argument('--kind', choices=('basic_auth', 'apikey', 'jwt'), default='basic_auth')
    s.add_argument('--username', help='basic_auth and jwt')
    s.add_argument('--header', help='apikey: the HTTP header carrying the key, e.g. X-API-Key')
    s.add_argument('--realm', default='Zato')
    s.add_argument('fields', nargs='*', metavar='FIELD=VALUE', type=admin_commands.field_arg,
                   help='any other field of the definition (a JWT ttl, a rate_limit ...)')
    s = sec_sub.add_parser('change-password', help='set a new secret: read from stdin, or random and printed')
    s.add_argument('path')
    s.add_argument('name')
    s.add_argument('--password-stdin', action='store_true', help='read the new secret from standard input')

    from zato.cli import sso as sso_cli
    sso_cli.add_commands(sub, ArgumentParser)

    d = sub.add_parser('deploy', help='hot-deploy a service module, or every .py file in a directory')
    d.add_argument('source', metavar='FILE_OR_DIR')
    d.add_argument('path', metavar='ENV_PATH')

    # A command for each route of the admin API: channels, connections, rate limits, services ...
    admin_commands.add_commands(sub, {('service',): svc_sub, ('security',): sec_sub})
    return p


out = admin_commands.print_json


def run(args: argparse.Namespace) -> int:
    if getattr(args, 'admin_command', None) is not None:
        return admin_commands.run(args)

    if args.command == 'sso':
        from zato.cli import sso as sso_cli
        return sso_cli.run(args)

    if args.command == 'quickstart':
        from zato.cli.quickstart import create
        result = create(args.path, odb=args.odb, odb_host=args.odb_host, odb_port=args.odb_port,
                        odb_user=args.odb_user, odb_password=args.odb_password, odb_db_name=args.odb_db_name,
                        bus=args.bus, servers=args.servers, workers=args.workers, cluster_name=args.cluster_name,
                        host=args.host, base_port=args.base_port, web_admin_port=args.web_admin_port)
        print(f'Environment created in {result["path"]}')
        print(f'Admin API user:     {result["admin_username"]}')
        print(f'Admin API password: {result["admin_password"]}   (shown once; the CLI keeps it encrypted and uses '
              'it by itself)')
        print(f'Web-admin:          {result["web_admin_url"]}  user `{result["web_admin_username"]}`, '
              f'password {result["web_admin_password"]}   (shown once)')
        if not args.start:
            print(f'Start it with:      zato start {result["path"]}')
            return 0
        return start_env(result['path'], foreground=False)

    if args.command == 'start':
        return start_env(args.path, foreground=args.fg)

    if args.command == 'stop':
        from zato.cli.process import stop
        for name in stop(args.path):
            print(f'{name} stopped')
        return 0

    if args.command == 'info':
        from zato.cli.process import info as env_info
        data = env_info(args.path)
        if args.format == 'json':
            out(data)
        else:
            print(f'Environment: {data["path"]}\nCluster:     {data["cluster_name"]}\n'
                  f'ODB:         {data["odb"]}\nBus:         {data["bus"]}\nWorkers:     {data["workers_per_server"]}'
                  ' per server')
            for s in data['servers']:
                state = 'running' if s['running'] else 'stopped'
                print(f'{s["name"]}:     {s["url"]} {state}' + (f' (pid {s["pid"]})' if s['pid'] else ''))
        return 0

    if args.command in ('create', 'update', 'reset-totp-key'):
        from zato.cli import web_admin
        if args.command == 'create':
            return web_admin.create_user(args.path, args.username, args.password_stdin)
        if args.command == 'update':
            return web_admin.update_password(args.path, args.username, args.password_stdin)
        return web_admin.reset_totp_key(args.path, args.username, args.key, args.key_label)

    if args.command == 'check-config':
        from zato.cli.process import check_config
        checked = check_config(args.path)
        print('OK: ' + ', '.join(checked))
        return 0

    if args.command == 'service':
        from zato.admin_client import AdminClient
        payload = None
        if args.payload is not None:
            try:
                payload = json.loads(args.payload)
            except ValueError as e:
                raise ZatoError(f'--payload is not valid JSON: {e}') from None
        result = AdminClient.for_env(args.path).call(
            'POST', '/zato/admin/invoke', {'name': args.name, 'payload': payload, 'async': args.is_async})
        if args.is_async:
            print(result['cid'])
        elif result is not None:
            # None: the service returned nothing (a 204), and nothing is printed, as curl prints nothing
            out(result)
        return 0

    if args.command == 'deploy':
        return deploy(args.source, args.path)

    if args.command == 'security':
        return security(args)
    raise AssertionError(args.command)


def start_env(path: str, foreground: bool) -> int:
    from zato.cli.process import start
    started = start(path, foreground=foreground)
    if not foreground:
        for info in started:
            print(f'{info["server"]} listening on {info["url"]} (pid {info["pid"]})')
    return 0


def security(args: argparse.Namespace) -> int:
    from zato.admin_client import AdminClient
    client = AdminClient.for_env(args.path)
    if args.action == 'create':
        body: dict[str, Any] = {**admin_commands.body_of(args), 'name': args.name, 'kind': args.kind,
                                'realm': args.realm}
        if args.kind == 'apikey':
            if not args.header:
                raise ZatoError('--header is required for an API key definition')
            body['header'] = args.header
        else:
            if not args.username:
                raise ZatoError(f'--username is required for a {args.kind} definition')
            body['username'] = args.username
        created = client.call('POST', '/zato/admin/security', body)
        print(f'Created {created["kind"]} definition `{created["name"]}` (id {created["id"]})')
        print(f'Secret: {created["password"]}   (shown once)')
        return 0
    # change-password
    matches = [d for d in client.call('GET', '/zato/admin/security') if d['name'] == args.name]
    if not matches:
        raise ZatoError(f'no security definition named `{args.name}`')
    body = {}
    if args.password_stdin:
        body['password'] = sys.stdin.readline().rstrip('\n')
    changed = client.call('POST', f'/zato/admin/security/{matches[0]["id"]}/change-password', body)
    if 'password' in changed:
        print(f'New secret: {changed["password"]}   (shown once)')
    else:
        print(f'Secret of `{args.name}` changed')
    return 0


def deploy(source: str, env_dir: str) -> int:
    from zato.admin_client import AdminCallError, AdminClient
    if os.path.isdir(source):
        # Schemas first, so that the services that use them find them
        names = sorted((n for n in os.listdir(source) if n.endswith(('.py', '.json'))),
                       key=lambda n: (not n.endswith('.json'), n))
        files = [os.path.join(source, n) for n in names]
        if not files:
            raise ZatoError(f'{source} has no .py or .json files')
    elif os.path.isfile(source):
        files = [source]
    else:
        raise ZatoError(f'{source}: no such file or directory')
    client = AdminClient.for_env(env_dir)
    failed = 0
    for path in files:
        try:
            with open(path, encoding='utf-8') as f:
                text = f.read()
        except (OSError, UnicodeDecodeError) as e:
            print(f'zato: error: {path}: {e}', file=sys.stderr)
            failed += 1
            continue
        try:
            result = client.call('POST', '/zato/admin/deploy', {'file_name': os.path.basename(path), 'source': text})
        except AdminCallError as e:
            print(f'zato: error: deploying {path} failed: {e.details}', file=sys.stderr)
            failed += 1
            continue
        if 'services_using' in result:
            using = ', '.join(result['services_using']) or 'no service yet'
            print(f'Deployed JSON Schema {os.path.basename(path)} (version {result["version"]}), used by: {using}')
        else:
            services = ', '.join(result['services']) or 'no services'
            print(f'Deployed {os.path.basename(path)} (version {result["version"]}): {services}')
    return 1 if failed else 0


def parse(parser: ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """The arguments; FIELD=VALUE ones after an option (`--stdin secret is_active=false`) are fields
    too, which argparse alone would refuse: it matches a positional list once, before the option."""
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, 'fields') or any(text.startswith('-') for text in extra):
            parser.error(f'unrecognized arguments: {" ".join(extra)}')
        try:
            args.fields += [admin_commands.field_arg(text) for text in extra]
        except argparse.ArgumentTypeError as e:
            parser.error(f'argument FIELD=VALUE: {e}')
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(build_parser(), argv)
    try:
        return run(args)
    except ZatoError as e:
        print(f'zato: error: {e}', file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as e:  # noqa: BLE001 - the CLI never shows a traceback
        print(f'zato: error: {type(e).__name__}: {e}', file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
