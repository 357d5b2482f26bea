from reahl.web.fw import UserInterface

from reahlhello.page import HelloPage


class HelloUI(UserInterface):
    def assemble(self):
        self.define_view("/hello", title="Hello", page=HelloPage.factory("Hello world!"))
