from pyramid.config import Configurator
from pyramid.view import view_config


@view_config(route_name="hello", renderer="templates/hello.jinja2")
def hello(request):
    return {"message": "Hello world!"}


with Configurator() as config:
    config.include("pyramid_jinja2")
    config.add_route("hello", "/hello/")
    config.scan()
app = config.make_wsgi_app()
