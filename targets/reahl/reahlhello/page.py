from reahl.web.ui import HTML5Page, P


class HelloPage(HTML5Page):
    """The page (Reahl builds HTML from widgets, not template files): shows the message it is given."""

    def __init__(self, view, message):
        super().__init__(view)
        self.body.add_child(P(view, text=message))
