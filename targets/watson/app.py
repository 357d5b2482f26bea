import os

from watson.framework import applications, controllers

HERE = os.path.dirname(os.path.abspath(__file__))


class Hello(controllers.Rest):
    def GET(self):
        return {"message": "Hello world!"}


app = applications.Http({
    "routes": {
        "hello": {
            "path": "/hello[/]",
            "options": {"controller": "app.Hello"},
        },
    },
    "views": {
        "renderers": {
            "jinja2": {"config": {"paths": [os.path.join(HERE, "views")]}},
        },
    },
})
