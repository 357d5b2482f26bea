from baize.asgi import JSONResponse, Router, request_response


@request_response
async def hello(request):
    return JSONResponse({"message": "Hello world!"})


app = Router(("/hello/", hello))
