from lihil import Lihil, Route

hello = Route("/hello")


@hello.get
async def get_hello() -> dict[str, str]:
    return {"message": "Hello world!"}


app = Lihil(hello)
