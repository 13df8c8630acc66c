"""The floor for bench/http.py: the smallest Flask JSON route, served like the project."""

from flask import Flask

app = Flask(__name__)


@app.get("/hello")
def hello() -> dict:
    return {"hello": "world"}
