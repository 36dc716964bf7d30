"""The uvicorn peer: Starlette's hello world.

    uvicorn --app-dir bench/peers --loop uvloop --http httptools starlette_app:app
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: Request) -> JSONResponse:
    return JSONResponse({'message': 'Hello, World!'})


app = Starlette(routes=[Route('/hello', hello)])
