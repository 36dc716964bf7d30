"""Logging in: from a username, a password and maybe a TOTP code to a new session.

The checks run in this order, each refusal answered with the generic E005001 unless an inform_if_*
flag of sso.conf allows more, and then only to a caller who gave the right password:

1. `current_app` is one of [apps] login_allowed; remote_addr and user_agent sent by the client
   itself only from an application of [apps] login_metadata_allowed (E006001);
2. the user exists; if not, the password is still checked, against a dummy argon2id hash with the
   same parameters, so that an unknown user costs what a wrong password does;
3. the password is checked, always, then: a user the brute-force protection locked out is refused
   (the right password too, and the attempt is not counted); a wrong password is counted;
4. the address is one of the user's [user_address_list] ([login] reject_if_not_listed);
5. the user is not locked (E005002), signed up (E005003) and approved (E005004);
6. the password has not expired (E003004), is not about to (W003005 as a warning, or E003006), and
   need not be changed (E003007) - unless a `new_password` comes with the login;
7. the TOTP code, when the user has TOTP on: accepted once (zato.sso.totp); a wrong one is counted;
8. then, only then, a session.
"""

from __future__ import annotations

from types import SimpleNamespace

import functools
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text, update

from zato.config.networks import in_networks
from zato.odb.models import SSOUser
from zato.security.passwords import hash_password, new_password, verify_password
from zato.sso import totp
from zato.sso.bruteforce import LOCKED_BY, after_failure
from zato.sso.context import SSOContext, iso
from zato.sso.sessions import Sessions
from zato.sso.status import OK, WARNING, SSOError, not_allowed, status_code
from zato.sso.users import APPROVED, DAY, FINAL, Users
from zato.sso.validation import check_password
from zato.sso.verify_cache import forget_after_commit


@functools.cache
def dummy_hash() -> str:
    """What an unknown user's password is checked against: same algorithm and cost as a real one's."""
    return hash_password(new_password())


@dataclass
class LoginResult:
    ust: str
    user_id: str
    username: str
    creation_time: float
    expiration_time: float
    status: str = OK
    sub_status: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {'status': self.status, 'ust': self.ust, 'user_id': self.user_id,
                               'username': self.username, 'creation_time': iso(self.creation_time),
                               'expiration_time': iso(self.expiration_time)}
        if self.sub_status:
            out['sub_status'] = self.sub_status
        return out


# What `_count_failure` works on for a name nobody has: a row id no row has (ids start at 1), and the
# counters of a user who never failed
NO_USER = -1
NOBODY = SimpleNamespace(failed_logins=0, lockout_count=0, last_failure_time=0.0, locked_until=0.0)


def address_allowed(ctx: SSOContext, username: str, remote_addr: str) -> bool:
    networks = ctx.config.user_address_list.get(username.casefold())
    if networks is None:
        return not ctx.config.get('login', 'reject_if_not_listed')
    return in_networks(remote_addr, networks)

class Login:
    def __init__(self, ctx: SSOContext, users: Users, sessions: Sessions) -> None:
        self.ctx = ctx
        self.users = users
        self.sessions = sessions

    def login(self, username: Any, password: Any, current_app: Any, remote_addr: str = '',
              user_agent: str = '', has_remote_addr: bool = False, has_user_agent: bool = False,
              new_password: Any = '', totp_code: Any = None) -> LoginResult:
        ctx = self.ctx
        config = ctx.config
        app = ctx.check_app(current_app, for_login=True)
        if (has_remote_addr or has_user_agent) and app not in config.get('apps', 'login_metadata_allowed'):
            raise SSOError(status_code.metadata.not_allowed)
        if not isinstance(password, str) or not isinstance(username, str):
            raise SSOError(status_code.common.invalid_input)
        login = config['login']
        pw_conf = config['password']
        with ctx.Session() as session:
            user = self.users.by_username(session, username)
            if user is None:
                verify_password(dummy_hash(), password)
                self._count_failure(session, None, ctx.clock())
                raise not_allowed()
            now = ctx.clock()
            password_ok = verify_password(user.password_hash, password)
            if user.locked_until > now:
                raise not_allowed()  # even for the right password, and not counted
            if not password_ok:
                self._count_failure(session, user, now)
                raise not_allowed()
            if not address_allowed(ctx, user.username, remote_addr):
                raise not_allowed()
            if user.is_locked:
                inform = login['inform_if_locked'] and user.locked_by != LOCKED_BY
                raise SSOError(status_code.auth.locked) if inform else not_allowed()
            if user.sign_up_status != FINAL:
                raise SSOError(status_code.auth.invalid_signup_status) if login['inform_if_not_confirmed'] \
                    else not_allowed()
            if user.approval_status != APPROVED:
                raise SSOError(status_code.auth.not_approved) if login['inform_if_not_approved'] else not_allowed()

            sub_status: list[str] = []
            changing = isinstance(new_password, str) and new_password != ''
            if not changing:
                if now >= user.password_expiry:
                    raise SSOError(status_code.password.expired) if pw_conf['inform_if_expired'] else not_allowed()
                if now >= user.password_expiry - pw_conf['about_to_expire_threshold'] * DAY:
                    if not pw_conf['log_in_if_about_to_expire']:
                        raise SSOError(status_code.password.e_about_to_exp) \
                            if pw_conf['inform_if_about_to_expire'] else not_allowed()
                    if pw_conf['inform_if_about_to_expire']:
                        sub_status.append(status_code.password.w_about_to_exp)
                if user.password_must_change:
                    raise SSOError(status_code.password.must_send_new) \
                        if pw_conf['inform_if_must_be_changed'] else not_allowed()
            else:
                check_password(config, new_password)

            if user.is_totp_enabled and not self._accept_totp(session, user, totp_code, now):
                self._count_failure(session, user, now)
                raise not_allowed()

            if changing:
                self.users.set_password(session, user, new_password)  # ends every other session
            user.failed_logins, user.lockout_count, user.last_failure_time, user.locked_until = 0, 0, 0.0, 0.0
            user.last_login_time = now
            ust, row = self.sessions.open(session, user, app, remote_addr, user_agent, now)
            session.commit()
            return LoginResult(ust, user.user_id, user.username, row.creation_time,
                               min(row.expiration_time, row.max_expiration_time),
                               WARNING if sub_status else OK, sub_status)

    def _accept_totp(self, session: Any, user: SSOUser, code: Any, now: float) -> bool:
        """Whether `code` is good and this is the first time it is used: the user's last accepted step
        is raised to the code's in one conditional UPDATE, committed at once, which only one of any
        number of concurrent logins (workers, servers) can win."""
        if not isinstance(code, str | int) or isinstance(code, bool):
            return False
        key = self.ctx.cipher.decrypt(user.totp_key) if user.totp_key else ''
        step = totp.matching_step(key, str(code), now)
        if step is None:
            return False
        won = session.execute(update(SSOUser).where(SSOUser.id == user.id, SSOUser.totp_last_step < step)
                              .values(totp_last_step=step),
                              execution_options={'synchronize_session': False}).rowcount
        session.commit()
        return won == 1

    def _count_failure(self, session: Any, user: SSOUser | None, now: float) -> None:
        """One more failure, counted in the ODB under the row's lock, so that concurrent failures on
        several workers all count; may start a lockout, or lock the user for good.

        With no user (a name nobody has), the same statements run against a row that cannot exist,
        so that an unknown user's refusal costs the same round trips to the ODB as a wrong password's:
        on a busy machine each round trip is milliseconds, and skipping them would tell the two apart."""
        if session.bind.dialect.name == 'postgresql':
            # Not worth waiting for the disk: a counter a crash loses costs an attacker a few more tries,
            # and the wait would tell a known user (slower) from an unknown one
            session.execute(text('SET LOCAL synchronous_commit TO OFF'))
        # A no-op UPDATE takes the row's lock (the database's, on SQLite) and reads the row in one go
        user_id = user.id if user is not None else NO_USER
        row = session.execute(update(SSOUser).where(SSOUser.id == user_id)
                              .values(failed_logins=SSOUser.failed_logins)
                              .returning(SSOUser.failed_logins, SSOUser.lockout_count, SSOUser.last_failure_time,
                                         SSOUser.locked_until),
                              execution_options={'synchronize_session': False}).one_or_none()
        if row is None:
            row = NOBODY  # the same computation on the values a new user's row has
        state = after_failure(self.ctx.lockout, row.failed_logins, row.lockout_count, row.last_failure_time,
                              row.locked_until, now)
        values: dict[str, Any] = {'failed_logins': state.failed_logins, 'lockout_count': state.lockout_count,
                                  'last_failure_time': now, 'locked_until': state.locked_until}
        if state.locked_for_good:
            values.update(is_locked=True, locked_time=now, locked_by=LOCKED_BY)
            if user is not None:
                forget_after_commit(self.ctx, session, user_pk=user.id)  # verify refuses a locked user's sessions
        session.execute(update(SSOUser).where(SSOUser.id == user_id).values(**values),
                        execution_options={'synchronize_session': False})
        session.commit()
