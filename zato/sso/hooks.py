"""Services of the deployment that SSO calls, as 3.1 did: `[user_validation] service` validates the
input of a sign-up and of a super-user's create, and `[signup] callback_service_list` hears of each
new sign-up.

1. Validation runs with the built-in rules (zato.sso.validation), before anything is written.
   Each service named is invoked with the input (username, password, email, the names, app_list,
   current_app) and answers 3.1's {"is_valid": true|false, "sub_status": [...]}: when not valid,
   the call is refused with its sub_status (the generic E005001 if it gives none), or with what an
   SSOError it raises says. The built-in `zato.sso.signup.validate`, 3.1's default, applies the
   built-in rules, which have run already, so it is not invoked again.
2. Callbacks run after a sign-up created a user, after the answer (in the background, as the emails
   do), so that how long they take tells a caller nothing about whether the username was new. Each is
   invoked with the new user's data (as GET /zato/sso/user shows it), `current_app` and 3.1's
   `sign_up_confirm_token`; never the password. A callback that fails is logged; the sign-up stands.
3. Without a server (the CLI, the web-admin) nothing is invoked: their new users meet the built-in rules only.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from zato.sso.context import SSOContext
from zato.sso.status import SSOError, not_allowed

logger = logging.getLogger('zato.sso')

BUILT_IN_VALIDATION = 'zato.sso.signup.validate'

# What validation input carries (3.1's signup context)
VALIDATED = ('username', 'password', 'email', 'display_name', 'first_name', 'middle_name', 'last_name', 'app_list')

_CODE = re.compile(r'[EW]\d{6}')


def validate(ctx: SSOContext, cid: str, data: dict[str, Any], current_app: str) -> None:
    """Invokes each validation service but the built-in one; SSOError for the first that says invalid."""
    if ctx.invoke is None:
        return
    payload = {key: data[key] for key in VALIDATED if data.get(key) is not None}
    payload['current_app'] = current_app
    for name in ctx.config.get('user_validation', 'service'):
        if name == BUILT_IN_VALIDATION:
            continue
        out = ctx.invoke(name, payload, cid)
        if not isinstance(out, dict) or not isinstance(out.get('is_valid'), bool):
            raise RuntimeError(f'SSO validation service `{name}` answered no boolean `is_valid`')
        if not out['is_valid']:
            codes = out.get('sub_status') or []
            codes = [codes] if isinstance(codes, str) else codes
            if not isinstance(codes, list) or not all(isinstance(c, str) and _CODE.fullmatch(c) for c in codes):
                raise RuntimeError(f'SSO validation service `{name}` answered an invalid sub_status `{codes!r}`')
            logger.info('SSO input refused by `%s`, cid `%s`: %s', name, cid, codes)
            raise SSOError(*codes) if codes else not_allowed()


def signed_up(ctx: SSOContext, cid: str, user: dict[str, Any], current_app: str, confirm_token: str) -> None:
    """Invokes every [signup] callback_service_list service, after the answer."""
    names = ctx.config.get('signup', 'callback_service_list')
    if ctx.invoke is None or not names:
        return
    invoke = ctx.invoke
    payload = {**user, 'current_app': current_app, 'sign_up_confirm_token': confirm_token}

    def run() -> None:
        for name in names:
            try:
                invoke(name, dict(payload), cid)
            except Exception:
                logger.exception('SSO sign-up callback `%s` failed, cid `%s`', name, cid)
    ctx.defer(run)
