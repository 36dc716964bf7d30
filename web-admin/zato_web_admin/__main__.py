"""`python -m zato_web_admin ENV_DIR`: the web-admin of an environment on gunicorn (what `zato start`
runs next to the servers), on [web_admin] host and port of its server.conf."""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from gunicorn.app.base import BaseApplication

from zato.config import settings


class Runner(BaseApplication):
    def __init__(self, env_dir: str) -> None:
        self.env_dir = os.path.abspath(env_dir)
        self.config_ = settings.load(self.env_dir)
        super().__init__()

    def load_config(self) -> None:
        web = self.config_.section('web_admin')
        for key, value in {
            'bind': f'{web["host"]}:{web["port"]}',
            'workers': 1,
            'worker_class': 'gthread',
            'threads': 8,
            'pidfile': os.path.join(self.env_dir, 'run', 'web-admin.pid'),
            'errorlog': os.path.join(self.env_dir, 'logs', 'web-admin.log'),
            'accesslog': os.path.join(self.env_dir, 'logs', 'web-admin.access.log'),
            'proc_name': 'zato-web-admin',
            'graceful_timeout': 10,
            'timeout': 60,
            'forwarded_allow_ips': '127.0.0.1',
        }.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from zato_web_admin.app import WebAdmin
        from zato_web_admin.config import WebAdminConfig
        logging.basicConfig(filename=os.path.join(self.env_dir, 'logs', 'web-admin.log'), level=logging.INFO,
                            format='%(asctime)s - %(levelname)s - %(process)d - %(name)s - %(message)s')
        return WebAdmin(WebAdminConfig.load(self.env_dir))


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        sys.exit('usage: python -m zato_web_admin ENV_DIR')
    Runner(argv[0]).run()


if __name__ == '__main__':
    main(sys.argv[1:])
