"""Emails of SSO: the sign-up confirmation and the password reset, from 3.1's templates.

A template is plain text formatted with `data`, as in 3.1: `{data.display_name}` (the username when
the user gave no display name), `{data.username}` and `{data.token}` (empty in the welcome email). It is read from the
environment's `config/repo/static/email/` (the name comes from sso.conf), or is the built-in one
below when there is no such file. Emails go through the outgoing SMTP connection that `[main]
smtp_conn` names; with none named, nothing is sent and the log says so once per email.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace

from zato.sso.context import SSOContext

logger = logging.getLogger('zato.sso')

BUILT_IN = {
    'sso-confirm.txt': 'Hello {data.display_name},\n\nplease confirm your account with this token:\n\n'
                       '{data.token}\n\nIf you did not sign up, ignore this email.\n',
    'sso-welcome.txt': 'Hello {data.display_name},\n\nyour account is confirmed. Welcome!\n',
    'sso-password-reset.txt': 'Hello {data.display_name},\n\nsomeone, hopefully you, asked to reset your '
                              'password. Reset it with this token:\n\n{data.token}\n\nIf it was not you, '
                              'ignore this email: your password stays as it is.\n',
}


def template(ctx: SSOContext, name: str, what: str) -> str:
    if ctx.email_dir:
        path = os.path.join(ctx.email_dir, os.path.basename(name))
        if os.path.isfile(path):
            with open(path, encoding='utf-8') as f:
                return f.read()
    return BUILT_IN.get(name) or BUILT_IN[_BUILT_IN_OF[what]]


# Which built-in template stands in for a file sso.conf names but the environment does not have
_BUILT_IN_OF = {'sign-up confirmation': 'sso-confirm.txt', 'welcome': 'sso-welcome.txt',
                'password reset': 'sso-password-reset.txt'}


def send(ctx: SSOContext, what: str, from_: str, to: str, subject: str, template_name: str, username: str,
         display_name: str, token: str) -> bool:
    """Sends one email; False (and the reason in the log, never the token) when it could not be sent."""
    conn = ctx.config.get('main', 'smtp_conn')
    if not conn or ctx.mailer is None:
        logger.warning('SSO %s email to user `%s` not sent: no [main] smtp_conn in sso.conf', what, username)
        return False
    try:
        body = template(ctx, template_name, what).format(data=SimpleNamespace(
            display_name=display_name or username, username=username, token=token))
    except (OSError, ValueError, KeyError, AttributeError, IndexError) as e:
        logger.error('SSO %s email to user `%s` not sent: template `%s`: %s', what, username, template_name, e)
        return False
    try:
        ctx.mailer(conn, from_, to, subject, body)
    except Exception as e:  # noqa: BLE001 - whatever the connection raised, the caller was answered already
        logger.error('SSO %s email to user `%s` not sent through `%s`: %s: %s', what, username, conn,
                     type(e).__name__, e)
        return False
    logger.info('SSO %s email sent to user `%s` through `%s`', what, username, conn)
    return True
