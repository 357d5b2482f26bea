import morepath
from more.jinja2 import Jinja2App


class App(Jinja2App):
    pass


@App.template_directory()
def get_template_directory():
    return "templates"


@App.path(path="hello")
class Hello:
    pass


@App.html(model=Hello, template="hello.jinja2")
def hello(self, request):
    return {"message": "Hello world!"}


App.commit()
app = App()
