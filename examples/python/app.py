"""A small Flask app: the Python example Spread builds and runs."""

import os

from flask import Flask, jsonify
from markupsafe import escape

app = Flask(__name__)


@app.get("/")
def index():
    name = escape(os.environ.get("GREETING_NAME", "world"))
    return f"Hello, {name}, from Python on Spread!\n"


@app.get("/health")
def health():
    return jsonify(status="ok")
