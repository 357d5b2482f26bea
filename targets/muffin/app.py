import muffin

app = muffin.Application()


@app.route("/hello/", methods=["GET"])
async def hello(request):
    return {"message": "Hello world!"}
