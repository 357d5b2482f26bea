from micropie import App


class Hello(App):
    async def hello(self):
        return {"message": "Hello world!"}


app = Hello()
