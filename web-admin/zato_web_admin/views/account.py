"""Sign-in, sign-out and "My settings": TOTP on and off, and the user's own password."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zato.security.passwords import verify_password
from zato_web_admin import sessions, totp, users
from zato_web_admin.http import Request, Response, Route, redirect, safe_next

if TYPE_CHECKING:
    from zato_web_admin.app import WebAdmin


def login_form(app: WebAdmin, request: Request) -> Response:
    if request.current is not None:
        return redirect('/')
    return app.render(request, 'login.html', next=safe_next(request.query.get('next', '/')), username='')


def login(app: WebAdmin, request: Request) -> Response:
    config = app.config
    policy = users.Policy(config.require_totp, config.lockout_attempts, config.lockout_seconds)
    form = request.form
    username = form.get('username', '').strip()
    with app.db() as db:
        user = users.authenticate(db, config.crypto, policy, username, form.get('password', ''),
                                  form.get('totp_code', ''), request.remote_addr)
        if user is None:
            return app.render(request, 'login.html', 401, next=safe_next(form.get('next', '/')),
                              username=username, error=users.REFUSED)
        token = sessions.start(db, user)
    response = redirect(safe_next(form.get('next', '/')))
    response.set_cookie(sessions.COOKIE, token, secure=app.secure(request))
    response.delete_cookie('zato_web_admin_login', secure=app.secure(request))
    return response


def logout(app: WebAdmin, request: Request) -> Response:
    with app.db() as db:
        sessions.end(db, request.current.token_hash)
    response = redirect('/login')
    response.delete_cookie(sessions.COOKIE, secure=app.secure(request))
    return response


def render_settings(app: WebAdmin, request: Request, status: int = 200, **context: Any) -> Response:
    """The "My settings" page, with the TOTP key being set up if there is one, and `context` (errors)."""
    config = app.config
    with app.db() as db:
        user = users.get(db, request.current.username)
        assert user is not None
        pending = config.crypto.decrypt(user.totp_pending_key) if user.totp_pending_key else ''
        label = user.totp_label
    setup = None
    if pending:
        uri = totp.provisioning_uri(pending, request.current.username, label)
        setup = {'key': pending, 'uri': uri, 'qr': totp.qr_svg(uri)}
    return app.render(request, 'settings.html', status, has_totp=request.current.has_totp, setup=setup,
                      require_totp=config.require_totp, label=label, **context)


def settings(app: WebAdmin, request: Request) -> Response:
    return render_settings(app, request)


def totp_start(app: WebAdmin, request: Request) -> Response:
    label = request.form.get('label', '').strip()[:200] or 'Zato web-admin'
    with app.db() as db:
        user = users.get(db, request.current.username)
        assert user is not None
        user.totp_pending_key = app.config.crypto.encrypt(totp.new_key())
        user.totp_label = label
        db.commit()
    return redirect('/settings')


def totp_confirm(app: WebAdmin, request: Request) -> Response:
    with app.db() as db:
        user = users.get(db, request.current.username)
        assert user is not None
        if not user.totp_pending_key:
            return redirect('/settings')
        key = app.config.crypto.decrypt(user.totp_pending_key)
        step = totp.accept(key, request.form.get('totp_code', ''), 0)
        if step is None:
            db.rollback()
            return render_settings(app, request, 400, errors={'totp_code': 'The code does not match; check the '
                                                                           'time on your device and try the next '
                                                                           'code.'})
        user.totp_key, user.totp_pending_key, user.totp_last_step = user.totp_pending_key, '', step
        sessions.end_all_of(db, user.id, keep=request.current.token_hash)
        users.audit(db, user.username, 'totp.enable', 'web-admin-user', user.username,
                    remote_addr=request.remote_addr)
        db.commit()
    return app.done(request, '/settings', 'TOTP is on: sign-in now needs a code from your app.')


def totp_disable(app: WebAdmin, request: Request) -> Response:
    if app.config.require_totp:
        return render_settings(app, request, 400,
                               errors={'password_off': 'This environment requires TOTP for everyone.'})
    with app.db() as db:
        user = users.get(db, request.current.username)
        assert user is not None
        if not verify_password(user.password_hash, request.form.get('password', '')):
            return render_settings(app, request, 400, errors={'password_off': 'Wrong password.'})
        user.totp_key, user.totp_pending_key, user.totp_last_step = '', '', 0
        users.audit(db, user.username, 'totp.disable', 'web-admin-user', user.username,
                    remote_addr=request.remote_addr)
        db.commit()
    return app.done(request, '/settings', 'TOTP is off.')


def change_password(app: WebAdmin, request: Request) -> Response:
    form = request.form
    new, again = form.get('new_password', ''), form.get('new_password_again', '')
    with app.db() as db:
        user = users.get(db, request.current.username)
        assert user is not None
        if not verify_password(user.password_hash, form.get('current_password', '')):
            return render_settings(app, request, 400, errors={'current_password': 'Wrong password.'})
        if new != again:
            return render_settings(app, request, 400, errors={'new_password_again': 'The two passwords differ.'})
        try:
            users.set_password(db, user.username, new, by=user.username)
        except users.UserError as e:
            return render_settings(app, request, 400, errors={'new_password': str(e)})
        sessions.end_all_of(db, user.id, keep=request.current.token_hash)
        db.commit()
    return app.done(request, '/settings', 'Password changed; your other sessions were signed out.')


ROUTES: list[Route] = [
    ('GET', '/login', login_form, True),
    ('POST', '/login', login, True),
    ('POST', '/logout', logout, False),
    ('GET', '/settings', settings, False),
    ('POST', '/settings/totp/start', totp_start, False),
    ('POST', '/settings/totp/confirm', totp_confirm, False),
    ('POST', '/settings/totp/disable', totp_disable, False),
    ('POST', '/settings/password', change_password, False),
]
