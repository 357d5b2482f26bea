import falcon.asgi


class HelloResource:
    async def on_get(self, req, resp):
        resp.media = {"message": "Hello world!"}


app = falcon.asgi.App()
app.req_options.strip_url_path_trailing_slash = True
app.add_route("/hello", HelloResource())
