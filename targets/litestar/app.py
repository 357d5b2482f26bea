from litestar import Litestar, get


@get("/hello/")
async def hello() -> dict[str, str]:
    return {"message": "Hello world!"}


app = Litestar(route_handlers=[hello], openapi_config=None)
