"""The course's starter-kit bot, as teams ran it: Flask, a fastText `.bin`, nearest neighbours.

Written after the-hat-game's `flask_app` (app.py + LocalFasttextPlayer):

* the model is a fastText `.bin` trained with the library defaults (skipgram,
  dim 100, subwords on, 2 M buckets) on the raw concatenated corpus;
* `/explain` answers `get_nearest_neighbors(word, k=n_words)`;
* `/guess` answers `get_nearest_neighbors(" ".join(words), k=n_words)`;
* answers are `json.dumps` of a list, as the kit did;
* it is served by Werkzeug's threaded server (`app.run(...)`, the kit's
  `python app.py` / Procfile `web: python ./app.py`): one process, a thread per
  connection. fastText builds its neighbour matrix on the first query.

Run: `python -m benchmarks.starter_kit_bot --model model.bin --port 5000`
(or `STARTER_KIT_MODEL=model.bin flask --app benchmarks.starter_kit_bot run`).
"""

from __future__ import annotations

import argparse
import json
import os
from typing import Any

import fasttext
from flask import Flask, request

app = Flask(__name__)
_model: Any = None


def load(path: str) -> None:
    global _model
    _model = fasttext.load_model(path)


def neighbours(text: str, n_words: int) -> list[str]:
    return [word for _, word in _model.get_nearest_neighbors(text, k=n_words)]


@app.route("/")
def index() -> str:
    return "ok"


@app.route("/explain")
def explain() -> str:
    word = request.args.get("word", "")
    n_words = int(request.args.get("n_words", "5"))
    return json.dumps(neighbours(word, n_words))


@app.route("/guess")
def guess() -> str:
    words = request.args.getlist("words")
    n_words = int(request.args.get("n_words", "5"))
    return json.dumps(neighbours(" ".join(words), n_words))


if os.environ.get("STARTER_KIT_MODEL"):  # `flask run` imports the module: load at import time.
    load(os.environ["STARTER_KIT_MODEL"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", required=True, help="fastText .bin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", 5000)))
    args = parser.parse_args()
    if _model is None:
        load(args.model)
    # What `app.run()` in the kit's app.py does: Werkzeug's server, threaded (the default).
    app.run(host=args.host, port=args.port, threaded=True)


if __name__ == "__main__":
    main()
