"""TurboGears2 in minimal mode: one root controller, a Kajiki template."""
import os

from tg import MinimalApplicationConfigurator, TGController, expose

HERE = os.path.dirname(os.path.abspath(__file__))


class RootController(TGController):
    @expose("kajiki:hello.xhtml")
    def hello(self):
        return dict(message="Hello world!")


config = MinimalApplicationConfigurator()
config.update_blueprint({
    "root_controller": RootController(),
    "renderers": ["kajiki"],
    "auto_reload_templates": False,
    "paths": {"templates": [os.path.join(HERE, "templates")]},
})
app = config.make_wsgi_app()
