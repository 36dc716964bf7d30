"""The FastAPI peer: the hello world GET, and the order POST validated by a pydantic model.

    uvicorn --app-dir bench/peers --loop uvloop --http httptools fastapi_app:app

``Order`` has the same 10 fields and types as the SimpleIO input of ``bench.order`` in
bench/zato_services.py, and ``OrderResult`` the same 5 as its output, so both servers parse,
validate and convert the same body and check the same response.
"""

from datetime import date

from fastapi import FastAPI
from pydantic import BaseModel


class Order(BaseModel):
    customer: str
    email: str
    sku: str
    quantity: int
    price: float
    currency: str
    express: bool
    delivery_date: date
    country: str
    postcode: str


class OrderResult(BaseModel):
    ok: bool
    customer: str
    total: float
    currency: str
    express: bool


app = FastAPI()


@app.get('/hello')
async def hello() -> dict[str, str]:
    return {'message': 'Hello, World!'}


@app.post('/order', response_model=OrderResult)
async def order(order: Order) -> OrderResult:
    return OrderResult(ok=True, customer=order.customer, total=round(order.quantity * order.price, 2),
                       currency=order.currency, express=order.express)
