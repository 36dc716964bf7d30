"""The sign-in and "My settings" views called alone, over a real ODB."""

from __future__ import annotations

from zato.security.passwords import verify_password
from zato_web_admin import sessions, users
from zato_web_admin.views import account

from tests.web_admin.views.standalone import PASSWORD, header, request, signed_in, text


def test_signing_in_with_the_right_password_starts_a_session_and_goes_where_next_says(app):
    with app.db() as db:
        users.create(db, 'jane', PASSWORD)
        db.commit()
    response = account.login(app, request('POST', '/login', {'username': 'jane', 'password': PASSWORD,
                                                             'next': '/services?q=x'}))
    assert response.status == 303
    assert header(response, 'Location') == ['/services?q=x']
    cookie = next(c for c in header(response, 'Set-Cookie') if c.startswith(sessions.COOKIE + '='))
    token = cookie.split(';')[0].split('=', 1)[1]
    with app.db() as db:
        current = sessions.load(db, token, app.config.idle_seconds, app.config.max_seconds)
    assert current is not None and current.username == 'jane'


def test_a_wrong_password_is_refused_as_an_unknown_user_is_and_starts_no_session(app):
    with app.db() as db:
        users.create(db, 'jane', PASSWORD)
        db.commit()
    wrong = account.login(app, request('POST', '/login', {'username': 'jane', 'password': 'not ' + PASSWORD}))
    unknown = account.login(app, request('POST', '/login', {'username': 'john', 'password': PASSWORD}))
    for response in (wrong, unknown):
        assert response.status == 401
        assert users.REFUSED in text(response)
        assert not any(c.startswith(sessions.COOKIE + '=') for c in header(response, 'Set-Cookie'))


def test_the_sign_in_form_sends_a_signed_in_user_home(app):
    response = account.login_form(app, request('GET', '/login', current=signed_in(app)))
    assert (response.status, header(response, 'Location')) == (303, ['/'])


def test_a_new_password_typed_twice_differently_is_refused_and_the_old_one_kept(app):
    current = signed_in(app)
    response = account.change_password(app, request('POST', '/settings/password', {
        'current_password': PASSWORD, 'new_password': 'another long password', 'new_password_again': 'other'},
        current=current))
    assert response.status == 400
    assert 'The two passwords differ.' in text(response)
    with app.db() as db:
        user = users.get(db, 'jane')
        assert user is not None and verify_password(user.password_hash, PASSWORD)


def test_a_password_change_signs_out_the_users_other_sessions_but_not_this_one(app):
    current = signed_in(app)
    with app.db() as db:
        user = users.get(db, 'jane')
        assert user is not None
        other = sessions.start(db, user)
    response = account.change_password(app, request('POST', '/settings/password', {
        'current_password': PASSWORD, 'new_password': 'another long password',
        'new_password_again': 'another long password'}, current=current))
    assert (response.status, header(response, 'Location')) == (303, ['/settings'])
    with app.db() as db:
        assert sessions.load(db, other, 1800, 43200) is None
        assert sessions.ids_of(db, current.user_id) == [current.token_hash]
