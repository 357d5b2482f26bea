from reahl.web.fw import UserInterface

from reahlhello.page import HelloPage
from reahlhello.scenarios import FortunesPage, ScenariosPage


class HelloUI(UserInterface):
    def assemble(self):
        self.define_view("/hello", title="Hello", page=HelloPage.factory("Hello world!"))
        self.define_view("/scenarios", title="Scenarios", page=ScenariosPage.factory())
        self.define_view("/fortunes", title="Fortunes", page=FortunesPage.factory())
