"""The gunicorn + gevent peer: Falcon's hello world.

    gunicorn -k gevent -w 1 --chdir bench/peers falcon_app:app
"""

import falcon


class Hello:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = {'message': 'Hello, World!'}


app = falcon.App()
app.add_route('/hello', Hello())
