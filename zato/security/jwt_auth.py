"""JWT: `POST /zato/jwt/log-in` returns a signed token; `Authorization: Bearer <token>` on a
channel with a JWT definition; an idle expiry that slides forward on every use; log-out ends the
token on every worker of the cluster.

The token is an HS256 JWT signed with a key derived from the environment's secret key (so every
server of an environment shares it). Only HS256 is accepted — never `none`, never an algorithm
the token itself asks for — and the signature is checked before any claim is read. `exp` is the
token's hard limit (`max_lifetime`), `nbf` and `aud` are enforced, and the token's id must name a
live session, whose idle expiry (`ttl`) each use pushes forward.

Sessions live in each worker's memory, kept in step by the cluster bus (log-in, renewals, log-out)
and persisted in the ODB (table jwt_session) so that a worker started later knows them too.
Renewals are announced at most every ttl/10 per session and written to the ODB in batches, off
the request path.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time
from typing import TYPE_CHECKING, Any, Protocol

import gevent
import jwt
from sqlalchemy import delete, select, update

from zato.odb.models import JWTSession, SecurityDef
from zato.security.passwords import hash_password, verify_password

if TYPE_CHECKING:
    from zato.config.security import SecurityConfig

logger = logging.getLogger('zato.jwt')

ALGORITHMS = ['HS256']
SUBJECT = 'security.jwt'
DEFAULT_TTL = 3600
DEFAULT_MAX_LIFETIME = 86400
FLUSH_INTERVAL = 5.0

# A compact JWS (RFC 7515 §7.1): three parts in unpadded base64url (§2). PyJWT would also take `=` padding;
# a token is one exact string, so anything but this form is refused before the signature is even checked.
COMPACT_JWS = re.compile(r'[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+')

# Verified when the user name is unknown, so that an unknown user costs what a wrong password does
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def signing_key(secret_key: str) -> bytes:
    return hashlib.sha256(b'zato-jwt-signing-key:' + secret_key.encode()).digest()


class JWTHost(Protocol):
    """What the manager uses of the process it runs in: the ODB, the cluster bus, its cluster's id."""

    Session: Any
    bus: Any
    cluster_id: int


class JWTManager:
    """One per worker."""

    def __init__(self, host: JWTHost, key: bytes) -> None:
        self.host = host
        self.key = key
        self.sessions: dict[str, tuple[float, int]] = {}   # jti -> (idle expiry, sec_def id)
        self.announced: dict[str, float] = {}              # jti -> expiry last told to the cluster
        self.dirty: dict[str, float] = {}                  # jti -> expiry still to write to the ODB
        self.revoked: dict[str, float] = {}                # jti -> when its token expires anyway

    # Cluster state

    def start(self) -> None:
        self.host.bus.subscribe(SUBJECT, self.on_message)
        gevent.spawn(self._flush_loop)

    def load(self) -> None:
        now = time.time()
        with self.host.Session() as session:
            rows = session.scalars(select(JWTSession).where(JWTSession.cluster_id == self.host.cluster_id,
                                                            JWTSession.expires_at > now)).all()
            self.sessions = {row.jti: (row.expires_at, row.sec_def_id) for row in rows}

    def _from_odb(self, jti: str) -> tuple[float, int] | None:
        with self.host.Session() as session:
            row = session.get(JWTSession, jti)
            if row is None or row.cluster_id != self.host.cluster_id:
                return None
            found = (row.expires_at, row.sec_def_id)
        current = self.sessions.get(jti)
        if current is None or current[0] < found[0]:
            self.sessions[jti] = found
        return self.sessions[jti]

    def forget_definition(self, sec_def_id: int) -> None:
        """Ends, in this worker, every session of a deleted definition (the ODB's rows go with it by cascade)."""
        for jti in [jti for jti, (_, def_id) in self.sessions.items() if def_id == sec_def_id]:
            del self.sessions[jti]
            self.announced.pop(jti, None)
            self.dirty.pop(jti, None)

    def on_message(self, msg: dict[str, Any]) -> None:
        action, jti = msg['action'], msg['jti']
        if action == 'revoke':
            self.sessions.pop(jti, None)
            self.dirty.pop(jti, None)
            self.revoked[jti] = msg.get('exp', time.time() + DEFAULT_MAX_LIFETIME)
        elif jti not in self.revoked:
            # A renewal another worker announced before it heard of the log-out may arrive after the
            # revocation (the bus orders no two publishers): it must not bring the session back
            current = self.sessions.get(jti)
            if current is None or current[0] < msg['expires_at']:
                self.sessions[jti] = (msg['expires_at'], msg['sec_def_id'])

    def _flush_loop(self) -> None:
        while True:
            gevent.sleep(FLUSH_INTERVAL)
            try:
                self.flush()
            except Exception:
                logger.exception('Could not store JWT session renewals')

    def flush(self) -> None:
        now = time.time()
        for jti in [jti for jti, (expires_at, _) in self.sessions.items() if expires_at < now]:
            del self.sessions[jti]
        for jti in [jti for jti in self.announced if jti not in self.sessions]:
            del self.announced[jti]
        for jti in [jti for jti, exp in self.revoked.items() if exp < now]:
            del self.revoked[jti]
        if not self.dirty:
            return
        dirty, self.dirty = self.dirty, {}
        with self.host.Session() as session:
            for jti, expires_at in dirty.items():
                session.execute(update(JWTSession).where(JWTSession.jti == jti, JWTSession.expires_at < expires_at)
                                .values(expires_at=expires_at))
            session.execute(delete(JWTSession).where(JWTSession.cluster_id == self.host.cluster_id,
                                                     JWTSession.expires_at < now))
            session.commit()

    # Log-in and log-out

    def log_in(self, username: str, password: str) -> dict[str, Any] | None:
        """A new token for valid credentials of an active JWT definition, else None."""
        with self.host.Session() as session:
            row = session.scalars(select(SecurityDef).where(
                SecurityDef.cluster_id == self.host.cluster_id, SecurityDef.kind == 'jwt',
                SecurityDef.username == username, SecurityDef.is_active.is_(True))).first()
            ok = verify_password(row.password_hash if row else _DUMMY_HASH, password)
            if row is None or not ok:
                return None
            now = time.time()
            ttl = int(row.opaque.get('ttl', DEFAULT_TTL))
            max_lifetime = int(row.opaque.get('max_lifetime', DEFAULT_MAX_LIFETIME))
            jti = secrets.token_urlsafe(24)
            claims: dict[str, Any] = {'sub': username, 'jti': jti, 'iat': int(now), 'nbf': int(now),
                                      'exp': int(now + max(max_lifetime, ttl))}
            audience = row.opaque.get('audience')
            if audience:
                claims['aud'] = audience
            token = jwt.encode(claims, self.key, algorithm='HS256')
            expires_at = now + ttl
            session.add(JWTSession(jti=jti, cluster_id=self.host.cluster_id, sec_def_id=row.id,
                                   username=username, expires_at=expires_at))
            session.commit()
            sec_def_id = row.id
        self.sessions[jti] = (expires_at, sec_def_id)
        self.host.bus.publish(SUBJECT, {'action': 'session', 'jti': jti, 'expires_at': expires_at,
                                           'sec_def_id': sec_def_id})
        return {'token': token, 'token_type': 'Bearer', 'expires_in': ttl}

    def log_out(self, authorization: str | None) -> bool:
        claims = self._decode(authorization, audience=None, any_audience=True)
        if claims is None or claims['jti'] in self.revoked:
            return False
        if claims['jti'] not in self.sessions and self._from_odb(claims['jti']) is None:
            return False
        jti = claims['jti']
        self.sessions.pop(jti, None)
        self.revoked[jti] = float(claims['exp'])
        with self.host.Session() as session:
            session.execute(delete(JWTSession).where(JWTSession.jti == jti))
            session.commit()
        self.host.bus.publish(SUBJECT, {'action': 'revoke', 'jti': jti, 'exp': float(claims['exp'])})
        return True

    # The request path

    def _decode(self, authorization: str | None, audience: str | None, any_audience: bool = False) -> dict | None:
        if not authorization:
            return None
        scheme, _, token = authorization.partition(' ')
        token = token.strip()
        if scheme.lower() != 'bearer' or not COMPACT_JWS.fullmatch(token):
            return None
        options = {'require': ['exp', 'nbf', 'iat', 'jti', 'sub'], 'verify_aud': not any_audience}
        try:
            claims = jwt.decode(token, self.key, algorithms=ALGORITHMS, audience=audience or None,
                                options=options)  # type: ignore[arg-type]
        except jwt.PyJWTError:
            return None
        return claims if isinstance(claims.get('jti'), str) else None

    def verify_request(self, sec: SecurityConfig, authorization: str | None) -> str | None:
        """The user name when the bearer token is valid for this definition; None otherwise."""
        claims = self._decode(authorization, sec.audience)
        if claims is None:
            return None
        jti = claims['jti']
        if jti in self.revoked:
            return None
        current = self.sessions.get(jti)
        if current is None:
            # Issued a moment ago by another worker, before its bus message got here: the ODB has it,
            # since a token is handed out only after its session is committed
            current = self._from_odb(jti)
        now = time.time()
        if current is None or current[1] != sec.id or current[0] < now or claims['sub'] != sec.username:
            return None
        expires_at = now + sec.ttl
        self.sessions[jti] = (expires_at, sec.id)
        # Sliding expiry: tell the others now and then, not on every request
        if expires_at - self.announced.get(jti, 0.0) > sec.ttl / 10:
            self.announced[jti] = expires_at
            self.dirty[jti] = expires_at
            self.host.bus.publish(SUBJECT, {'action': 'session', 'jti': jti, 'expires_at': expires_at,
                                               'sec_def_id': sec.id})
        return claims['sub']
