import os

import bottle

bottle.TEMPLATE_PATH.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "templates"))

app = bottle.Bottle()


@app.route("/hello/")
@bottle.view("hello")
def hello():
    return {"message": "Hello world!"}
