from pycnic.core import Handler, WSGI


class Hello(Handler):
    def get(self):
        return {"message": "Hello world!"}


class app(WSGI):
    routes = [("/hello", Hello())]
