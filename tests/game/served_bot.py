"""A bot for the tournament tests, served by a real uvicorn process (see conftest `serve_bot`).

HATBOT_TEST_BOT_TABLE is a JSON object word -> hints; HATBOT_TEST_BOT_MODE says how
the bot misbehaves: "good" (it does not), "slow" (every guess takes 1.5 s, past
the host's 1 s limit) or "malformed" (replies that are not JSON lists of strings).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Annotated, Any

from fastapi import FastAPI, Query, Response

MODE = os.environ.get("HATBOT_TEST_BOT_MODE", "good")
TABLE: dict[str, list[str]] = json.loads(os.environ.get("HATBOT_TEST_BOT_TABLE", "{}"))
SLOW_SECONDS = 1.5

app = FastAPI()


@app.get("/")
def ping() -> dict[str, str]:
    return {"mode": MODE}


@app.get("/explain", response_model=None)
def explain(word: str, n_words: int) -> Any:
    if MODE == "malformed":
        return Response('["unterminated", ', media_type="application/json")
    return TABLE.get(word, [])[:n_words]


@app.get("/guess", response_model=None)
async def guess(words: Annotated[list[str], Query()], n_words: int) -> Any:
    if MODE == "slow":
        await asyncio.sleep(SLOW_SECONDS)
    if MODE == "malformed":
        return {"guesses": words}
    overlap = {w: len(set(words) & set(hints)) for w, hints in TABLE.items()}
    ranked = sorted((w for w, k in overlap.items() if k > 0), key=lambda w: (-overlap[w], w))
    return ranked[:n_words]
