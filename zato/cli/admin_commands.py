"""The CLI's commands over the admin API: one for each route in the admin API's route table
(zato.server.internal_routes.ADMIN_ROUTES), so that every kind of object the API manages is managed
from the CLI alike, with the credential the CLI keeps in the environment (the one `zato service
invoke` uses), and a route added to the API is a command with no more code.

A route's service name gives the command's words, as Zato 3.1 named its admin services:
`zato.channel.rest.create` is `zato channel rest create`, and `get-list` is `list`. Each `{param}` of
the route's path is a positional argument after the environment's PATH; `{id}` takes the object's
name (or its id). FIELD=VALUE arguments are the JSON body of a POST or PUT, each value read as JSON
when it is JSON (`true`, `5`, `["a", "b"]`, `"007"`) and as a string otherwise, or the query string of
a GET. `--stdin FIELD` reads a field from standard input, so that a secret stays out of the shell's
history and the process list.

`python -m zato.cli.admin_commands` prints the table of these commands that docs/cli.md shows.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import urllib.parse
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from zato.errors import ZatoError
from zato.server.internal_routes import ADMIN_ROUTES

if TYPE_CHECKING:
    from zato.admin_client import AdminClient

    SubParsers = argparse._SubParsersAction[Any]

# Admin services the CLI has a command of its own for, with arguments of their own
OWN_COMMANDS = {
    'zato.service.invoke': 'zato service invoke',
    'zato.hot-deploy.create': 'zato deploy',
    'zato.security.create': 'zato security create',
    'zato.security.change-password': 'zato security change-password',
}

# A verb as the CLI says it, where the service's own is longer
VERBS = {'get-list': 'list'}

# How a path parameter is shown in a usage line, and its help: `{id}` is given by name
METAVARS = {'id': 'NAME'}
PARAM_HELP = {'id': 'its name, or its id', 'name': "the service's name",
              'kind': 'the kind of connection (`zato outconn get-kind-list PATH` lists them)',
              'client_id': "a WebSocket client's id (`zato channel web-socket get-connection-list` lists them)"}

_PARAM = re.compile(r'\{(\w+)\}')


@dataclass(frozen=True)
class Command:
    """One admin API route as a CLI command: `zato <words> PATH <params> [FIELD=VALUE ...]`."""

    words: tuple[str, ...]
    method: str
    url_path: str
    service: str

    @property
    def params(self) -> list[str]:
        return _PARAM.findall(self.url_path)

    @property
    def takes_fields(self) -> bool:
        return self.method != 'DELETE'

    @property
    def takes_body(self) -> bool:
        return self.method in ('POST', 'PUT')

    def usage(self) -> str:
        """As docs/cli.md shows it: the FIELD=VALUE arguments of a write (a GET's, a query string, are
        for the few routes that read one, and said in prose)."""
        parts = ['zato', *self.words, 'PATH', *(METAVARS.get(p, p.upper()) for p in self.params)]
        if self.takes_body:
            parts.append('[FIELD=VALUE ...]')
        return ' '.join(parts)


def commands(routes: tuple[tuple[str, str, str], ...] = ADMIN_ROUTES) -> list[Command]:
    """A command for each route whose service has no command of its own, in the table's order."""
    found = []
    for url_path, method, service in routes:
        if service in OWN_COMMANDS:
            continue
        *nouns, verb = service.split('.')[1:]  # every admin service is zato.<nouns>.<verb>
        found.append(Command((*nouns, VERBS.get(verb, verb)), method, url_path, service))
    return found


def field_arg(text: str) -> tuple[str, str]:
    """A FIELD=VALUE argument as (field, value text); a bad one is a usage error (exit 2)."""
    name, sep, value = text.partition('=')
    if not sep or not name:
        raise argparse.ArgumentTypeError(f'expected FIELD=VALUE, got `{text}`')
    return name, value


def _no_constant(name: str) -> Any:
    raise ValueError(name)


def json_value(text: str) -> Any:
    """The value of a FIELD=VALUE argument: JSON when the text is JSON, the text itself otherwise.
    NaN and Infinity are not JSON values here: they stay strings."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def add_commands(top: SubParsers, groups: dict[tuple[str, ...], SubParsers]) -> None:
    """Adds every command to the `zato` parser. `groups` holds the sub-command sets already made, by
    their words ({('service',): ...}), so that a generated verb joins a hand-written group."""
    for cmd in commands():
        parent = top
        for i, word in enumerate(cmd.words[:-1]):
            key = cmd.words[:i + 1]
            if key not in groups:
                group = parent.add_parser(word, help=f'{" ".join(key)} objects through the admin API')
                groups[key] = group.add_subparsers(dest='action', required=True, parser_class=type(group))
            parent = groups[key]
        leaf = parent.add_parser(cmd.words[-1], help=f'{cmd.method} {cmd.url_path}',
                                 description=f'{cmd.method} {cmd.url_path} (admin service {cmd.service})')
        leaf.add_argument('path', metavar='PATH', help='the environment')
        for param in cmd.params:
            leaf.add_argument(f'param_{param}', metavar=METAVARS.get(param, param.upper()),
                              help=PARAM_HELP.get(param))
        if cmd.takes_fields:
            where = 'the query string' if cmd.method == 'GET' else 'the JSON body; a value is JSON if it parses as JSON'
            leaf.add_argument('fields', nargs='*', metavar='FIELD=VALUE', type=field_arg, help=where)
        if cmd.takes_body:
            leaf.add_argument('--stdin', action='append', default=[], metavar='FIELD',
                              help="read FIELD's value from a line of standard input (for a secret)")
        leaf.set_defaults(admin_command=cmd)


def body_of(args: argparse.Namespace) -> dict[str, Any]:
    """The JSON body of a POST or PUT: the FIELD=VALUE arguments, then each --stdin field (a string)."""
    body: dict[str, Any] = {}
    for name, text in args.fields:
        if name in body:
            raise ZatoError(f'field `{name}` is given twice')
        body[name] = json_value(text)
    for name in getattr(args, 'stdin', []):
        if name in body:
            raise ZatoError(f'field `{name}` is given twice')
        line = sys.stdin.readline()
        if not line:
            raise ZatoError(f'--stdin {name}: standard input has no line left for it')
        body[name] = line.rstrip('\r\n')
    return body


def find_id(client: AdminClient, cmd: Command, list_path: str, value: str) -> str:
    """The id of the object named `value` in the list at `list_path`; a number that names none is
    taken as an id (the API says 404 if there is no such object)."""
    items = client.call('GET', list_path) or []
    for item in items:
        if isinstance(item, dict) and item.get('name') == value and 'id' in item:
            return str(item['id'])
    if value.isdigit():
        return value
    before = cmd.params[:cmd.params.index('id')]
    lister = ' '.join(('zato', *cmd.words[:-1], 'list', 'PATH', *(METAVARS.get(p, p.upper()) for p in before)))
    raise ZatoError(f'no object named `{value}` at {list_path} (`{lister}` lists them)')


def url_of(client: AdminClient, cmd: Command, args: argparse.Namespace) -> str:
    """The route's path with each parameter filled in, an object's name looked up as its id."""
    path = cmd.url_path
    for param in cmd.params:
        value = str(getattr(args, f'param_{param}'))
        placeholder = '{' + param + '}'
        if param == 'id':
            value = find_id(client, cmd, path.split('/' + placeholder, 1)[0], value)
        path = path.replace(placeholder, urllib.parse.quote(value, safe=''))
    return path


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def run(args: argparse.Namespace) -> int:
    from zato.admin_client import AdminClient
    cmd: Command = args.admin_command
    client = AdminClient.for_env(args.path)
    path = url_of(client, cmd, args)
    if cmd.method == 'GET':
        if args.fields:
            path += '?' + urllib.parse.urlencode(args.fields)
        result = client.call('GET', path)
    elif cmd.method == 'DELETE':
        result = client.call('DELETE', path)
    else:
        result = client.call(cmd.method, path, body_of(args))
    if result is not None:
        print_json(result)
    return 0


def render_docs() -> str:
    """The table of these commands in docs/cli.md, between its `generated` markers."""
    lines = ['| command | admin API | admin service |', '|---|---|---|']
    for cmd in commands():
        lines.append(f'| `{cmd.usage()}` | `{cmd.method} {cmd.url_path}` | `{cmd.service}` |')
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    sys.stdout.write(render_docs())
