"""The Zato side of bench/rest.py, hot-deployed into the benchmark's environment.

``bench.order`` declares in SimpleIO the same 10 input fields and 5 output fields as the pydantic
models of bench/peers/fastapi_app.py.

``bench.hello-post`` and ``bench.hello-post-guarded`` are the same code; the second declares a JSON
Schema (``hello.json``, deployed by bench/rest.py before this module) and its channel has Basic Auth
and a rate limit, so that the two measure what the request-path guards cost.
"""

from zato.server.service import Bool, Date, Float, Int, Service, Text


class Hello(Service):
    name = 'bench.hello'

    def handle(self) -> None:
        self.response.payload = {'message': 'Hello, World!'}


class Order(Service):
    name = 'bench.order'

    class SimpleIO:
        input_required = (Text('customer'), Text('email'), Text('sku'), Int('quantity'), Float('price'),
                          Text('currency'), Bool('express'), Date('delivery_date'), Text('country'),
                          Text('postcode'))
        output_required = Bool('ok'), Text('customer'), Float('total'), Text('currency'), Bool('express')

    def handle(self) -> None:
        order = self.request.input
        self.response.payload = {'ok': True, 'customer': order.customer, 'total': round(order.quantity * order.price, 2),
                                 'currency': order.currency, 'express': order.express}


class HelloPost(Service):
    name = 'bench.hello-post'

    def handle(self) -> None:
        self.response.payload = {'message': f'Hello, {self.request.payload["name"]}!'}


class HelloPostGuarded(HelloPost):
    name = 'bench.hello-post-guarded'
    schema = 'hello.json'
