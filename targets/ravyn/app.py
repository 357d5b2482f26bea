from ravyn import Ravyn, get


@get("/hello")
async def hello() -> dict[str, str]:
    return {"message": "Hello world!"}


app = Ravyn(routes=[hello], enable_openapi=False)
