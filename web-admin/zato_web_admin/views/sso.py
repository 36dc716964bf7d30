"""SSO pages (3.1 had none): users — search, create, lock and unlock, approve and reject, reset the
TOTP key, change the password, delete — and each user's sessions, ended one by one or all at once.

Every change is a POST with the session's CSRF token (checked by the app before any view runs), made
through the SSO core (zato_web_admin.sso) and written to the audit log. Passwords the web-admin
generates and new TOTP keys are shown on the page that answers the POST, once; never in a URL, a
cookie or the audit log. While server.conf's [component_enabled] sso is false, every page says so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from zato_web_admin import totp as web_admin_totp
from zato_web_admin.http import HTTPError, Request, Response, Route, safe_next
from zato_web_admin.sso import APPROVAL, SIGN_UP, Actor, SSOAdmin, SSOError, no_such_user

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin

BASE = '/sso/users'
PAGE_SIZE = 25

# What a refusal of the core means, and the form field it is about (3.1's sub-status codes)
MEANING: dict[str, tuple[str, str]] = {
    'E001001': ('username', 'Not a valid username.'),
    'E001002': ('username', 'This username is taken.'),
    'E001003': ('username', 'The username is too long.'),
    'E001004': ('username', 'A username may not contain whitespace.'),
    'E002001': ('email', 'Not a valid email address.'),
    'E002002': ('email', 'This email address is in use already.'),
    'E002003': ('email', 'The email address is too long.'),
    'E002004': ('email', 'An email address may not contain whitespace.'),
    'E002005': ('email', 'An email address is required.'),
    'E003001': ('password', 'This password is not allowed (it is on the list of rejected passwords).'),
    'E003002': ('password', 'The password is too short.'),
    'E003003': ('password', 'The password is too long.'),
    'E008001': ('__all__', 'This operation is not allowed.'),
    'E008002': ('__all__', 'Invalid input.'),
    'E008003': ('__all__', 'Something required is missing.'),
    'E010001': ('__all__', 'That definition is linked to a user already.'),
    'E010002': ('__all__', 'That definition is not linked to this user.'),
}


def explain(e: SSOError, config_min_length: int = 0) -> dict[str, str]:
    """The core's refusal as {field: message} for a form."""
    errors: dict[str, str] = {}
    for code in e.sub_status:
        name, text = MEANING.get(code, ('__all__', f'Refused ({code}).'))
        if code == 'E003002' and config_min_length:
            text = f'The password is too short: at least {config_min_length} characters.'
        errors.setdefault(name, text)
    return errors


# ################################################################################################ helpers

def core(app: WebAdmin) -> SSOAdmin | None:
    return app.config.sso


def sso_off(app: WebAdmin, request: Request) -> Response:
    """What every SSO page shows while SSO is off (or its sso.conf could not be read): 200 for a page,
    409 for an action, never an error page."""
    return app.render(request, 'sso_off.html', 200 if request.method == 'GET' else 409, error=app.config.sso_error)


def actor(request: Request) -> Actor:
    return Actor(request.current.username, request.remote_addr)


def back(request: Request) -> str:
    """Where an action leads back to: the list (with its search) or the user's page the form was on."""
    target = safe_next(request.form.get('next', BASE))
    return target if target.startswith(BASE) else BASE


def not_found(e: SSOError) -> HTTPError:
    if no_such_user(e):
        return HTTPError(404, 'No such SSO user')
    return HTTPError(400, ', '.join(e.sub_status))


def session_id_of(text: str) -> int:
    if not text.isascii() or not text.isdigit() or len(text) > 18:
        raise HTTPError(404, 'No such session')
    return int(text)


# ################################################################################################ users

def user_list(app: WebAdmin, request: Request) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    q = request.query
    criteria = {'username': q.get('username', '').strip()[:200],
                'display_name': q.get('display_name', '').strip()[:200],
                'approval_status': q.get('approval_status', '') if q.get('approval_status', '') in APPROVAL else '',
                'sign_up_status': q.get('sign_up_status', '') if q.get('sign_up_status', '') in SIGN_UP else ''}
    page = q.get('page', '1')
    page_number = int(page) if page.isascii() and page.isdigit() and 0 < len(page) < 7 and int(page) > 0 else 1
    if any('\x00' in value for value in criteria.values()):
        # No user's name holds a NUL (PostgreSQL stores none), and PostgreSQL refuses to compare with one
        found = {'total': 0, 'num_pages': 1, 'cur_page': 1, 'has_next_page': False, 'has_prev_page': False,
                 'result': []}
    else:
        found = sso.search({**criteria, 'is_name_exact': False, 'cur_page': page_number, 'page_size': PAGE_SIZE})
    shown = {k: v for k, v in criteria.items() if v}

    def link(number: int) -> str:
        return BASE + '?' + urlencode({**shown, 'page': number})
    here = BASE + ('?' + urlencode({**shown, 'page': page_number}) if shown or page_number > 1 else '')
    return app.render(request, 'sso_users.html', found=found, criteria=criteria, link=link, here=here,
                      approval=APPROVAL, sign_up=SIGN_UP)


def new_user(app: WebAdmin, request: Request) -> Response:
    if core(app) is None:
        return sso_off(app, request)
    return render_new(app, request, {})


def render_new(app: WebAdmin, request: Request, values: dict[str, str], status: int = 200,
               errors: dict[str, str] | None = None) -> Response:
    return app.render(request, 'sso_user_new.html', status, values=values, errors=errors or {})


def create_user(app: WebAdmin, request: Request) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    form = request.form
    values = {name: form.get(name, '').strip() for name in ('username', 'display_name', 'email')}
    values['password_must_change'] = form.get('password_must_change', '')
    values['totp'] = form.get('totp', '')
    password, again = form.get('password', ''), form.get('password_again', '')
    if password != again:
        return render_new(app, request, values, 400, {'password_again': 'The two passwords differ.'})
    if not values['username']:
        return render_new(app, request, values, 400, {'username': 'required'})
    nul = {name: 'A NUL character is not allowed.' for name in ('username', 'display_name', 'email')
           if '\x00' in values[name]}
    if nul:
        return render_new(app, request, values, 400, nul)
    data = {'username': values['username'], 'display_name': values['display_name'], 'email': values['email'],
            'password': password, 'password_must_change': bool(values['password_must_change']),
            'is_totp_enabled': bool(values['totp'])}
    try:
        created = sso.create(actor(request), data)
    except SSOError as e:
        return render_new(app, request, values, 400, explain(e, sso.config.get('password', 'min_length')))
    return app.render(request, 'sso_secret.html', title=f'Created SSO user {created.user["username"]}',
                      user=created.user, password=created.password, totp_key=created.totp_key,
                      totp_uri=created.totp_uri, qr=web_admin_totp.qr_svg(created.totp_uri) if created.totp_uri else '')


def user_page(app: WebAdmin, request: Request, user_id: str) -> Response:
    """A user's 3.1 statuses, their live sessions (End, End all), and their linked credentials (Remove,
    and a form to link another Basic Auth or JWT definition)."""
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    try:
        user, sessions = sso.sessions_of(user_id)
        linked, free = sso.linked_of(user_id)
    except SSOError as e:
        raise not_found(e) from None
    return app.render(request, 'sso_user.html', user=user, sessions=sessions, linked=linked, free=free,
                      here=f'{BASE}/{user_id}')


def _action(app: WebAdmin, request: Request, run: Any, message: str, target: str = '') -> Response:
    """Runs one change (`run(sso, actor)` returns the username) and leads back (to `target`, or where
    the form said) with `message`."""
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    target = target or back(request)
    try:
        username = run(sso, actor(request))
    except SSOError as e:
        if no_such_user(e):
            raise not_found(e) from None
        return app.done(request, target, f'Refused: {" ".join(explain(e).values())}', 'error')
    return app.done(request, target, message.format(username=username))


def lock(app: WebAdmin, request: Request, user_id: str) -> Response:
    return _action(app, request, lambda sso, who: sso.set_locked(who, user_id, True),
                   'Locked SSO user `{username}`; their sessions were ended.')


def unlock(app: WebAdmin, request: Request, user_id: str) -> Response:
    return _action(app, request, lambda sso, who: sso.set_locked(who, user_id, False),
                   'Unlocked SSO user `{username}`.')


def approve(app: WebAdmin, request: Request, user_id: str) -> Response:
    return _action(app, request, lambda sso, who: sso.set_approval(who, user_id, True),
                   'Approved SSO user `{username}`.')


def reject(app: WebAdmin, request: Request, user_id: str) -> Response:
    return _action(app, request, lambda sso, who: sso.set_approval(who, user_id, False),
                   'Rejected SSO user `{username}`; their sessions were ended.')


def delete(app: WebAdmin, request: Request, user_id: str) -> Response:
    target = back(request)
    if target == f'{BASE}/{user_id}':
        target = BASE  # the user's own page is gone with them
    return _action(app, request, lambda sso, who: sso.delete(who, user_id), 'Deleted SSO user `{username}`.',
                   target)


def reset_totp(app: WebAdmin, request: Request, user_id: str) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    try:
        username, key, uri = sso.reset_totp_key(actor(request), user_id)
    except SSOError as e:
        raise not_found(e) from None
    return app.render(request, 'sso_secret.html', title=f'New TOTP key of SSO user {username}',
                      user={'username': username, 'user_id': user_id}, password='', totp_key=key, totp_uri=uri,
                      qr=web_admin_totp.qr_svg(uri), sessions_ended=True)


def password_form(app: WebAdmin, request: Request, user_id: str) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    try:
        user = sso.user(user_id)
    except SSOError as e:
        raise not_found(e) from None
    return app.render(request, 'sso_password.html', user=user, errors={})


def change_password(app: WebAdmin, request: Request, user_id: str) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    form = request.form
    password, again = form.get('password', ''), form.get('password_again', '')
    must_change = bool(form.get('must_change', ''))
    try:
        user = sso.user(user_id)
    except SSOError as e:
        raise not_found(e) from None
    if password != again:
        return app.render(request, 'sso_password.html', 400, user=user,
                          errors={'password_again': 'The two passwords differ.'})
    try:
        username, generated, ended = sso.set_password(actor(request), user_id, password, must_change)
    except SSOError as e:
        if no_such_user(e):
            raise not_found(e) from None
        return app.render(request, 'sso_password.html', 400, user=user,
                          errors=explain(e, sso.config.get('password', 'min_length')))
    if generated:
        return app.render(request, 'sso_secret.html', title=f'New password of SSO user {username}', user=user,
                          password=generated, totp_key='', totp_uri='', qr='', sessions_ended=True)
    return app.done(request, f'{BASE}/{user_id}', f'Changed the password of SSO user `{username}`; '
                                                  f'{ended} session{"" if ended == 1 else "s"} ended.')


# ################################################################################################ sessions

def end_session(app: WebAdmin, request: Request, user_id: str, session_id: str) -> Response:
    number = session_id_of(session_id)
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    try:
        username, ended = sso.end_session(actor(request), user_id, number)
    except SSOError as e:
        raise not_found(e) from None
    if not ended:
        return app.done(request, f'{BASE}/{user_id}', 'That session had ended already.', 'error')
    return app.done(request, f'{BASE}/{user_id}', f'Ended a session of SSO user `{username}`.')


def end_all(app: WebAdmin, request: Request, user_id: str) -> Response:
    sso = core(app)
    if sso is None:
        return sso_off(app, request)
    try:
        username, ended = sso.end_all(actor(request), user_id)
    except SSOError as e:
        raise not_found(e) from None
    return app.done(request, f'{BASE}/{user_id}', f'Ended {ended} session{"" if ended == 1 else "s"} of SSO user '
                                                  f'`{username}`.')


# ################################################################################################ linked credentials

def link(app: WebAdmin, request: Request, user_id: str) -> Response:
    """Links the definition the form names (`sec_name`) to the user."""
    sec_name = request.form.get('sec_name', '')
    return _action(app, request, lambda sso, who: sso.link(who, user_id, sec_name),
                   f'Linked `{sec_name}` to SSO user `{{username}}`.', f'{BASE}/{user_id}')


def unlink(app: WebAdmin, request: Request, user_id: str, sec_id: str) -> Response:
    number = session_id_of(sec_id)  # a row id, as a session's
    return _action(app, request, lambda sso, who: sso.unlink(who, user_id, number),
                   'Removed a linked credential of SSO user `{username}`; the sessions it opened were ended.',
                   f'{BASE}/{user_id}')


ROUTES: list[Route] = [
    ('GET', BASE, user_list, False),
    ('GET', f'{BASE}/new', new_user, False),
    ('POST', f'{BASE}/new', create_user, False),
    ('GET', f'{BASE}/{{user_id}}', user_page, False),
    ('POST', f'{BASE}/{{user_id}}/lock', lock, False),
    ('POST', f'{BASE}/{{user_id}}/unlock', unlock, False),
    ('POST', f'{BASE}/{{user_id}}/approve', approve, False),
    ('POST', f'{BASE}/{{user_id}}/reject', reject, False),
    ('POST', f'{BASE}/{{user_id}}/totp', reset_totp, False),
    ('GET', f'{BASE}/{{user_id}}/password', password_form, False),
    ('POST', f'{BASE}/{{user_id}}/password', change_password, False),
    ('POST', f'{BASE}/{{user_id}}/delete', delete, False),
    ('POST', f'{BASE}/{{user_id}}/sessions/end-all', end_all, False),
    ('POST', f'{BASE}/{{user_id}}/sessions/{{session_id}}/end', end_session, False),
    ('POST', f'{BASE}/{{user_id}}/linked', link, False),
    ('POST', f'{BASE}/{{user_id}}/linked/{{sec_id}}/delete', unlink, False),
]
