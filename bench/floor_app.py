"""The floor for bench/http.py and bench/orders.py: the smallest Flask JSON routes, served like
the project."""

from flask import Flask, request

app = Flask(__name__)


@app.get("/hello")
def hello() -> dict:
    return {"hello": "world"}


@app.post("/orders")
def orders() -> tuple[dict, int]:
    """What any JSON POST costs: parse the body, answer 202 with a small object."""
    return {"id": 1, "status": "pending", "items": request.get_json()["items"]}, 202
