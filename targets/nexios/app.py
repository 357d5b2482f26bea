from nexios import NexiosApp

app = NexiosApp()


@app.get("/hello/")
async def hello(request, response):
    return response.json({"message": "Hello world!"})
