"""The real service (`hatbot serve`, uvicorn) over real HTTP, asked the way the host asks.

The host builds its calls with `requests`: `params={"words": [...], "n_words": 5}`
becomes `?words=h1&words=h2&n_words=5`; httpx builds the same query. Bad input gets
the answers chosen in test_api.py's docstring; here they are checked on the wire,
with raw query strings a browser or a broken client could send.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hatbot.game.rules import too_close
from hatbot.index import WordIndex

pytestmark = pytest.mark.anyio
WORD = re.compile(r"[a-z]+")
# A bound against hangs, not a latency claim (the host itself waits 1 s): requests sent
# together queue behind each other's CPU work, on a CI runner shared with other jobs.
TIMEOUT = httpx.Timeout(120.0)


@pytest.fixture(scope="module")
async def http(live_bot: str) -> AsyncIterator[httpx.AsyncClient]:
    # A new connection per call, as the host's `requests.get` does: reusing idle
    # connections races uvicorn's keep-alive timeout ("Server disconnected").
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=live_bot, timeout=TIMEOUT, limits=limits) as client:
        yield client


@pytest.fixture(scope="module")
def known(tiny_index: WordIndex) -> list[str]:
    words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok]
    return words[:40]


def host_list(response: httpx.Response, n_words: int) -> list[str]:
    """What the host accepts: 200, a JSON list of at most n_words lowercase a-z strings."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert isinstance(body, list) and len(body) <= n_words, body
    assert all(isinstance(w, str) and WORD.fullmatch(w) for w in body), body
    return body


async def test_ping_answers_the_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/")
    assert response.status_code == 200
    assert 'href="/docs"' in response.text and 'href="/metrics"' in response.text


async def test_explain_host_query_gives_n_hints(
    http: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    for word in known[:5]:
        response = await http.get("/explain", params={"word": word, "n_words": 5})
        assert response.request.url.query == f"word={word}&n_words=5".encode()
        hints = host_list(response, 5)
        assert len(hints) == 5 and all(h in tiny_index.ids for h in hints)
        assert not any(too_close(word, h) for h in hints)


async def test_guess_host_query_repeats_words_in_order(
    http: httpx.AsyncClient, known: list[str]
) -> None:
    hints = known[5:9]
    response = await http.get("/guess", params={"words": hints, "n_words": 5})
    expected = "&".join(f"words={h}" for h in hints) + "&n_words=5"
    assert response.request.url.query == expected.encode()
    guesses = host_list(response, 5)
    assert len(guesses) == 5 and not set(guesses) & set(hints)


async def test_game_round_prefixes_give_fresh_guesses(
    http: httpx.AsyncClient, known: list[str]
) -> None:
    """A round as the host plays it: one guess call per hint prefix, after each miss."""
    explained = host_list(await http.get("/explain", params={"word": known[0], "n_words": 5}), 5)
    seen: list[str] = []
    for i in range(1, len(explained) + 1):
        guesses = host_list(
            await http.get("/guess", params={"words": explained[:i], "n_words": 5}), 5
        )
        assert not set(guesses) & set(explained[:i])
        assert not set(guesses) & set(seen), (i, guesses, seen)
        if known[0] in guesses:
            break
        seen.extend(guesses)


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("word=SPACE&n_words=5", 200),
        ("word=c3po&n_words=5", 200),
        ("word=sp%20ace&n_words=5", 200),
        ("word=qwzxvbnm&n_words=5", 200),
        ("word=space&word=moon&n_words=5", 200),
        ("word=space&n_words=5&extra=1", 200),
        ("word=space", 422),
        ("word=space&n_words=", 422),
        ("word=space&n_words=five", 422),
        ("word=space&n_words=0", 422),
        ("word=space&n_words=51", 422),
        ("word=space&n_words=99999999999999999999999", 422),
        ("word=&n_words=5", 422),
        ("n_words=5", 422),
        (f"word={'a' * 65}&n_words=5", 422),
        ("word=1234&n_words=5", 422),
        ("word=%D0%BA%D0%BE%D1%81%D0%BC%D0%BE%D1%81&n_words=5", 422),  # космос
        ("word=caf%C3%A9&n_words=5", 422),
        ("word=%FF%FE&n_words=5", 422),  # not UTF-8: decoded to U+FFFD, no letters
        ("word=%00&n_words=5", 422),
        ("", 422),
    ],
)
async def test_explain_raw_query_is_answered_or_refused(
    http: httpx.AsyncClient, query: str, status: int
) -> None:
    response = await http.get(f"/explain?{query}")
    assert response.status_code == status, response.text
    if status == 200:
        assert host_list(response, 5)
    else:
        detail = response.json()["detail"]
        assert detail and (isinstance(detail, str) or all(e["msg"] for e in detail))


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"words": ["NASA", "Orbit"], "n_words": 5}, 200),
        ({"words": ["nasa", "nasa", "nasa"], "n_words": 5}, 200),
        ({"words": ["qwzxvb", "plmokn"], "n_words": 5}, 200),
        ({"words": ["r2d2", "c3po"], "n_words": 5}, 200),
        ({"words": [f"h{'a' * (i % 9 + 1)}" for i in range(100)], "n_words": 50}, 200),
        ({"words": ["nasa"]}, 422),
        ({"n_words": 5}, 422),
        ({"words": ["nasa"], "n_words": 5.5}, 422),
        ({"words": ["nasa"], "n_words": -1}, 422),
        ({"words": ["nasa", ""], "n_words": 5}, 422),
        ({"words": ["nasa", "a" * 65], "n_words": 5}, 422),
        ({"words": ["орбита"], "n_words": 5}, 422),
        ({"words": ["nasa", "42"], "n_words": 5}, 422),
        ({"words": ["nasa"] * 101, "n_words": 5}, 422),
    ],
)
async def test_guess_host_params_are_answered_or_refused(
    http: httpx.AsyncClient, params: dict[str, Any], status: int
) -> None:
    response = await http.get("/guess", params=params)
    assert response.status_code == status, response.text
    if status == 200:
        assert host_list(response, int(params["n_words"]))
    else:
        assert response.json()["detail"]


async def test_guess_two_hundred_parallel_calls_all_answer(
    http: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    """As in a tournament: many guess calls at once, every one a valid list. The hints are
    words WordNet knows, after 50 calls of them alone: the estimate of the host's mode
    that the host's hints feed (hatbot.host_mode) is settled before the burst and stays."""
    words = [w for w in known if tiny_index.is_word(w)]
    for i in range(50):
        response = await http.get("/guess", params={"words": words[i % len(words)], "n_words": 5})
        assert response.status_code == 200

    async def one(i: int) -> httpx.Response:
        hints = [words[(i + k) % len(words)] for k in range(1 + i % 5)]
        return await http.get("/guess", params={"words": hints, "n_words": 5})

    responses = await asyncio.gather(*(one(i) for i in range(200)))
    for response in responses:
        assert len(host_list(response, 5)) == 5
    # The same question gets the same answer, however busy the bot is.
    by_query: dict[bytes, list[str]] = {}
    for response in responses:
        by_query.setdefault(response.request.url.query, response.json())
        assert by_query[response.request.url.query] == response.json()


async def test_mixed_parallel_traffic_all_answers(
    http: httpx.AsyncClient, known: list[str]
) -> None:
    calls = []
    for i in range(20):
        word = known[i % len(known)]
        calls.append(http.get("/explain", params={"word": word, "n_words": 5}))
        calls.append(http.post("/v1/guess", json={"words": [word], "n_words": 5}))
        calls.append(http.get("/explain", params={"word": "", "n_words": 5}))
        calls.append(http.get("/readyz"))
    responses = await asyncio.gather(*calls)
    statuses = [r.status_code for r in responses]
    assert statuses == [200, 200, 422, 200] * 20


async def test_typed_api_and_model_over_http(
    http: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    model = (await http.get("/v1/model")).json()
    assert model["version"] == tiny_index.version
    explained = await http.post("/v1/explain", json={"word": "Space", "n_words": 3})
    assert explained.status_code == 200
    assert explained.json()["model_version"] == tiny_index.version
    assert len(explained.json()["words"]) <= 3
    refused = await http.post(
        "/v1/explain", content=b"{", headers={"content-type": "application/json"}
    )
    assert refused.status_code == 422


async def test_metrics_are_scraped_over_http(http: httpx.AsyncClient) -> None:
    response = await http.get("/metrics")
    assert response.status_code == 200
    assert "hatbot_model_loaded 1.0" in response.text
    assert "hatbot_answers_total" in response.text
