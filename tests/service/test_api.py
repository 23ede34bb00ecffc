"""The service's HTTP API, in-process: every endpoint, every kind of bad input, the docs.

The app runs with its lifespan (the tiny model loaded) behind httpx's ASGI transport.

What the bot does with each kind of input (the choices these tests pin down):

- `n_words` missing, not an integer (`five`, `5.5`, empty) or outside 1..HATBOT_MAX_N_WORDS
  (50 by default): 422. It is parsed as pydantic parses an int, so `5.0` and `05` are 5.
- A word or hint is read as the host reads words: lowercased, digits and punctuation
  dropped (`SPACE` is `space`, `c3po` is `cpo`, `space!` is `space`). So mixed case is
  accepted, and a word's answer equals its cleaned form's answer.
- Empty, over 64 characters (HATBOT_MAX_WORD_LENGTH), or without any letter a-z
  (`1234`, `---`): 422.
- Letters of other alphabets (Cyrillic, accented Latin, CJK, and letters like `İ` or the
  Kelvin sign that lowercase to ASCII): 422; the bot plays English only.
- `words` missing or empty, or over 100 hints (HATBOT_MAX_HINTS): 422. Repeated hints
  are accepted and count once; only the first 10 distinct hints are played
  (HATBOT_MAX_PLAYED_HINTS: the host sends at most 10, and the guesser's work grows with
  the square of the hints; 100 hints and 50 guesses took 28 s and returned nothing).
- Unknown but valid words: 200 with real vocabulary words (a fallback), never an error.
- A typed API body that is not JSON: 422; bytes that are not even text (not UTF-8):
  400, as FastAPI answers (documented in the OpenAPI document).
- A 422 always carries `detail`: a message naming the field, or validation errors
  whose `loc` names it. Host endpoints answer 200 only with a bare list of at most
  `n_words` lowercase a-z words.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from hatbot.config import Settings
from hatbot.game.rules import too_close
from hatbot.index import WordIndex

pytestmark = pytest.mark.anyio
WORD = re.compile(r"[a-z]+")
UNKNOWN = ["qwzxvb", "zzzzzzzzzz", "xkcdqrst", "a" * 64]


@pytest.fixture(scope="module")
async def client(tiny_store: Path, in_process: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(Settings(model_store=tiny_store, reload_interval=0)) as client:
        yield client


@pytest.fixture(scope="module")
def known(tiny_index: WordIndex) -> list[str]:
    """Frequent hat-eligible words of the tiny model: words the host could draw."""
    words = [w for w, ok in zip(tiny_index.words, tiny_index.eligible, strict=True) if ok]
    assert len(words) >= 30
    return words[:30]


def assert_words(body: Any, n_words: int, vocabulary: WordIndex | None = None) -> list[str]:
    """The host's contract: a bare list of at most n_words plain lowercase ASCII words."""
    assert isinstance(body, list), body
    assert len(body) <= n_words, body
    for word in body:
        assert isinstance(word, str) and WORD.fullmatch(word), body
        if vocabulary is not None:
            assert word in vocabulary.ids, word
    assert len(set(body)) == len(body), body
    return body


def error_text(response: httpx.Response) -> str:
    """The 422's explanation as one string: its message, or its errors' locations and messages."""
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    if isinstance(detail, str):
        assert detail.strip()
        return detail
    assert isinstance(detail, list) and detail, detail
    for error in detail:
        assert error["msg"].strip(), detail
    return " ".join(" ".join(map(str, e["loc"])) + " " + e["msg"] for e in detail)


# ---- the host protocol ----


@pytest.mark.parametrize("n_words", [1, 5, 10, 50])
async def test_explain_known_word_gives_n_valid_hints(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex, n_words: int
) -> None:
    for word in known[:5]:
        response = await client.get("/explain", params={"word": word, "n_words": n_words})
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        hints = assert_words(response.json(), n_words, tiny_index)
        assert len(hints) == n_words
        # The host would keep every one of them.
        assert not any(too_close(word, hint) for hint in hints), hints


@pytest.mark.parametrize("n_words", [1, 5, 10, 50])
async def test_guess_known_hints_gives_n_valid_guesses(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex, n_words: int
) -> None:
    hints = known[10:13]
    response = await client.get("/guess", params={"words": hints, "n_words": n_words})
    assert response.status_code == 200
    guesses = assert_words(response.json(), n_words, tiny_index)
    assert len(guesses) == n_words
    assert not set(guesses) & set(hints)
    assert not any(too_close(g, h) for g in guesses for h in hints)


async def test_guess_repeated_query_gives_the_same_answer(
    client: httpx.AsyncClient, known: list[str]
) -> None:
    first = await client.get("/guess", params={"words": known[:3], "n_words": 5})
    again = await client.get("/guess", params={"words": known[:3], "n_words": 5})
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert first.request.url.params.get_list("words") == known[:3]


@pytest.mark.parametrize(
    ("given", "cleaned"),
    [
        ("{w}", "{w}"),
        ("{W}", "{w}"),
        ("{Cap}", "{w}"),
        ("{w}!", "{w}"),
        ("  {w}  ", "{w}"),
        ("{w}2024", "{w}"),
        ("c3po", "cpo"),
        ("don't", "dont"),
        ("dog🐶", "dog"),
    ],
)
async def test_explain_unclean_word_answers_as_the_cleaned_word(
    client: httpx.AsyncClient, known: list[str], given: str, cleaned: str
) -> None:
    word = known[0]
    fill = {"w": word, "W": word.upper(), "Cap": word.capitalize()}
    raw = await client.get("/explain", params={"word": given.format(**fill), "n_words": 5})
    clean = await client.get("/explain", params={"word": cleaned.format(**fill), "n_words": 5})
    assert raw.status_code == clean.status_code == 200
    assert raw.json() == clean.json()


async def test_guess_mixed_case_and_repeated_hints_answer_as_clean_hints(
    client: httpx.AsyncClient, known: list[str]
) -> None:
    a, b = known[3], known[4]
    messy = [a.upper(), a, f"{b.capitalize()}!", a, b]
    raw = await client.get("/guess", params={"words": messy, "n_words": 5})
    clean = await client.get("/guess", params={"words": [a, b], "n_words": 5})
    assert raw.status_code == clean.status_code == 200
    assert raw.json() == clean.json()


@pytest.mark.parametrize("word", UNKNOWN)
async def test_explain_unknown_word_falls_back_to_real_words(
    client: httpx.AsyncClient, tiny_index: WordIndex, word: str
) -> None:
    assert word not in tiny_index.ids
    response = await client.get("/explain", params={"word": word, "n_words": 5})
    assert response.status_code == 200
    hints = assert_words(response.json(), 5, tiny_index)
    assert hints
    assert not any(too_close(word, hint) for hint in hints)


async def test_guess_unknown_hints_fall_back_to_real_words(
    client: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    response = await client.get("/guess", params={"words": UNKNOWN, "n_words": 5})
    assert response.status_code == 200
    assert assert_words(response.json(), 5, tiny_index)


async def test_guess_many_hints_plays_the_first_distinct_ones(
    client: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    hints = tiny_index.words[200:300]
    assert len(set(hints)) == 100
    full = await client.get("/guess", params={"words": hints, "n_words": 50})
    first = await client.get("/guess", params={"words": hints[:10], "n_words": 50})
    assert full.status_code == first.status_code == 200
    assert full.json() == first.json()
    assert assert_words(full.json(), 50, tiny_index)


@pytest.mark.parametrize("n_words", ["5.0", "05", "+5"])
async def test_explain_integral_n_words_spellings_count_as_five(
    client: httpx.AsyncClient, known: list[str], n_words: str
) -> None:
    response = await client.get("/explain", params={"word": known[0], "n_words": n_words})
    assert response.status_code == 200
    assert len(assert_words(response.json(), 5)) == 5


LONG = "a" * 65
EXPLAIN_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("no n_words", {"word": "space"}, "n_words"),
    ("no word", {"n_words": 5}, "word"),
    ("no query at all", {}, "word"),
    ("n_words text", {"word": "space", "n_words": "five"}, "n_words"),
    ("n_words fraction", {"word": "space", "n_words": "5.5"}, "n_words"),
    ("n_words empty", {"word": "space", "n_words": ""}, "n_words"),
    ("n_words zero", {"word": "space", "n_words": 0}, "n_words"),
    ("n_words negative", {"word": "space", "n_words": -3}, "n_words"),
    ("n_words over max", {"word": "space", "n_words": 51}, "n_words"),
    ("n_words huge", {"word": "space", "n_words": "1" + "0" * 30}, "n_words"),
    ("n_words exponent", {"word": "space", "n_words": "5e0"}, "n_words"),
    ("word empty", {"word": "", "n_words": 5}, "word"),
    ("word over-long", {"word": LONG, "n_words": 5}, "word"),
    ("word digits", {"word": "1234", "n_words": 5}, "word"),
    ("word punctuation", {"word": "---", "n_words": 5}, "word"),
    ("word blank", {"word": "   ", "n_words": 5}, "word"),
    ("word cyrillic", {"word": "космос", "n_words": 5}, "word"),
    ("word mixed alphabets", {"word": "spaсe", "n_words": 5}, "word"),  # Cyrillic с
    ("word accented", {"word": "café", "n_words": 5}, "word"),
    ("word cjk", {"word": "宇宙", "n_words": 5}, "word"),
    ("word dotted capital I", {"word": "İstanbul", "n_words": 5}, "word"),
    ("word kelvin sign", {"word": "\u212aelvin", "n_words": 5}, "word"),
    ("word replacement char", {"word": "\ufffd", "n_words": 5}, "word"),
]


@pytest.mark.parametrize(
    ("params", "field"), [c[1:] for c in EXPLAIN_REFUSED], ids=[c[0] for c in EXPLAIN_REFUSED]
)
async def test_explain_bad_input_is_refused_with_a_message(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/explain", params=params)
    assert field in error_text(response)


GUESS_REFUSED: list[tuple[str, dict[str, Any], str]] = [
    ("no n_words", {"words": ["nasa"]}, "n_words"),
    ("no words", {"n_words": 5}, "words"),
    ("n_words text", {"words": ["nasa"], "n_words": "five"}, "n_words"),
    ("n_words zero", {"words": ["nasa"], "n_words": 0}, "n_words"),
    ("n_words over max", {"words": ["nasa"], "n_words": 51}, "n_words"),
    ("hint empty", {"words": [""], "n_words": 5}, "hint"),
    ("one hint empty", {"words": ["nasa", "", "orbit"], "n_words": 5}, "hint"),
    ("hint over-long", {"words": ["nasa", LONG], "n_words": 5}, "hint"),
    ("hint digits", {"words": ["nasa", "2024"], "n_words": 5}, "hint"),
    ("hint cyrillic", {"words": ["орбита"], "n_words": 5}, "hint"),
    ("hint accented", {"words": ["nasa", "naïve"], "n_words": 5}, "hint"),
    ("101 hints", {"words": [f"h{'a' * (i % 7 + 1)}" for i in range(101)], "n_words": 5}, "hints"),
]


@pytest.mark.parametrize(
    ("params", "field"), [c[1:] for c in GUESS_REFUSED], ids=[c[0] for c in GUESS_REFUSED]
)
async def test_guess_bad_input_is_refused_with_a_message(
    client: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await client.get("/guess", params=params)
    assert field in error_text(response)


async def test_guess_hundred_hints_are_accepted(client: httpx.AsyncClient) -> None:
    hints = [f"h{'a' * (i % 7 + 1)}" for i in range(100)]
    response = await client.get("/guess", params={"words": hints, "n_words": 5})
    assert response.status_code == 200
    assert_words(response.json(), 5)


async def test_explain_sixty_four_letters_are_accepted(client: httpx.AsyncClient) -> None:
    response = await client.get("/explain", params={"word": "b" * 64, "n_words": 5})
    assert response.status_code == 200
    assert assert_words(response.json(), 5)


# ---- the typed API ----


async def test_explain_v1_answers_words_version_and_criteria(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    response = await client.post("/v1/explain", json={"word": known[0].upper(), "n_words": 7})
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"words", "model_version", "criteria", "input", "hints"}
    assert len(assert_words(body["words"], 7, tiny_index)) == 7
    assert body["model_version"] == tiny_index.version
    assert body["criteria"] == ["soft", "hard"]
    host = await client.get("/explain", params={"word": known[0], "n_words": 7})
    assert host.json() == body["words"]
    # How the word was read, and the modes each hint survives (the host's own rules).
    assert body["input"] == [
        {
            "given": known[0].upper(),
            "read_as": known[0],
            "rewritten": True,
            "known": True,
            "closest": None,
            "played": True,
            "note": f"read as {known[0]!r}: the host keeps letters only, lowercased",
        }
    ]
    assert body["hints"] == [{"word": w, "survives": ["soft", "hard"]} for w in body["words"]]


async def test_guess_v1_answers_words_version_and_criteria(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    response = await client.post("/v1/guess", json={"words": known[5:8]})
    assert response.status_code == 200
    body = response.json()
    assert len(assert_words(body["words"], 5, tiny_index)) == 5  # n_words defaults to 5
    assert body["model_version"] == tiny_index.version
    assert body["criteria"] == ["soft", "hard"]
    host = await client.get("/guess", params={"words": known[5:8], "n_words": 5})
    assert host.json() == body["words"]
    assert [(n["given"], n["known"], n["played"], n["note"]) for n in body["input"]] == [
        (w, True, True, "") for w in known[5:8]
    ]


async def test_explain_v1_says_a_word_was_rewritten_or_unknown(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    """`outer space` is read as `outerspace`; an unknown word says what was explained."""
    spaced = (await client.post("/v1/explain", json={"word": "Outer Space"})).json()
    (note,) = spaced["input"]
    assert (note["given"], note["read_as"]) == ("Outer Space", "outerspace")
    assert note["rewritten"] is True
    assert "outerspace" not in tiny_index.ids and note["known"] is False
    assert "read as 'outerspace'" in note["note"] and "unknown to the model" in note["note"]
    host = await client.get("/explain", params={"word": "Outer Space", "n_words": 5})
    assert host.json() == spaced["words"]  # the host route still answers a bare list

    nonsense = (await client.post("/v1/explain", json={"word": "qwzxqv"})).json()
    assert nonsense["input"][0]["known"] is False and nonsense["input"][0]["closest"] is None
    assert "no spelling is close" in nonsense["input"][0]["note"]

    # A misspelling of a word a hat may hold is explained as a known word.
    word = next(w for w in known if len(w) >= 6 and w + w[-1] not in tiny_index.ids)
    typo = word + word[-1]
    explained = (await client.post("/v1/explain", json={"word": typo})).json()
    closest = explained["input"][0]["closest"]
    assert closest in tiny_index.ids, explained["input"]
    assert f"closest spelling {closest!r}" in explained["input"][0]["note"]


async def test_guess_v1_says_which_hints_were_repeats_unknown_or_not_played(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    sent = [known[0].upper(), known[0], "qwzxqv", *known[1:12]]
    body = (await client.post("/v1/guess", json={"words": sent})).json()
    notes = body["input"]
    assert [n["given"] for n in notes] == sent
    assert [n["read_as"] for n in notes] == [known[0], known[0], "qwzxqv", *known[1:12]]
    assert notes[0]["rewritten"] and not notes[1]["rewritten"]
    assert notes[1]["played"] is False and "a repeat" in notes[1]["note"]
    assert notes[2]["known"] is False and "unknown to the model" in notes[2]["note"]
    # Ten distinct hints are played: the first 11 entries less the repeat; the rest are not.
    assert [n["played"] for n in notes] == [True, False] + [True] * 9 + [False] * 3
    assert all("beyond the first 10 distinct hints" in n["note"] for n in notes[11:])
    host = await client.get("/guess", params={"words": sent, "n_words": 5})
    assert host.json() == body["words"]


async def test_v1_unknown_words_fall_back_to_real_words(
    client: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    explained = await client.post("/v1/explain", json={"word": "qwzxvb", "n_words": 5})
    guessed = await client.post("/v1/guess", json={"words": ["qwzxvb", "qwzxvb"], "n_words": 5})
    assert explained.status_code == guessed.status_code == 200
    assert assert_words(explained.json()["words"], 5, tiny_index)
    assert assert_words(guessed.json()["words"], 5, tiny_index)


V1_REFUSED: list[tuple[str, str, Any, str]] = [
    ("explain empty body", "/v1/explain", {}, "word"),
    ("explain word not a string", "/v1/explain", {"word": 5}, "word"),
    ("explain word null", "/v1/explain", {"word": None}, "word"),
    ("explain word empty", "/v1/explain", {"word": ""}, "word"),
    ("explain word over-long", "/v1/explain", {"word": LONG}, "word"),
    ("explain word no letters", "/v1/explain", {"word": "!!!"}, "word"),
    ("explain word cyrillic", "/v1/explain", {"word": "слово"}, "word"),
    ("explain n_words zero", "/v1/explain", {"word": "space", "n_words": 0}, "n_words"),
    ("explain n_words over max", "/v1/explain", {"word": "space", "n_words": 51}, "n_words"),
    ("explain n_words fraction", "/v1/explain", {"word": "space", "n_words": 2.5}, "n_words"),
    ("explain n_words text", "/v1/explain", {"word": "space", "n_words": "five"}, "n_words"),
    ("explain unknown field", "/v1/explain", {"word": "space", "hint": "x"}, "hint"),
    ("explain body a list", "/v1/explain", ["space"], "body"),
    ("guess no words", "/v1/guess", {"n_words": 5}, "words"),
    ("guess words empty", "/v1/guess", {"words": []}, "words"),
    ("guess words a string", "/v1/guess", {"words": "nasa"}, "words"),
    ("guess hint not a string", "/v1/guess", {"words": ["nasa", 3]}, "words"),
    ("guess hint empty", "/v1/guess", {"words": ["nasa", ""]}, "hint"),
    ("guess hint greek", "/v1/guess", {"words": ["αστέρι"]}, "hint"),
    ("guess 101 hints", "/v1/guess", {"words": ["nasa"] * 101}, "hints"),
    ("guess n_words over max", "/v1/guess", {"words": ["nasa"], "n_words": 99}, "n_words"),
]


@pytest.mark.parametrize(
    ("path", "body", "field"), [c[1:] for c in V1_REFUSED], ids=[c[0] for c in V1_REFUSED]
)
async def test_v1_bad_input_is_refused_with_a_message(
    client: httpx.AsyncClient, path: str, body: Any, field: str
) -> None:
    response = await client.post(path, json=body)
    assert field in error_text(response)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"not json",
        b'{"word": "\\ud800", "n_words": 5}',
        b'{"word": "space", "\\ud800": 5}',
        b'{"word": "sp\\u0000ace"}',
        b"\xff\xfe",
    ],
)
async def test_explain_v1_malformed_body_is_refused(client: httpx.AsyncClient, raw: bytes) -> None:
    response = await client.post(
        "/v1/explain", content=raw, headers={"content-type": "application/json"}
    )
    # "sp\0ace" reads as "space" (the NUL is dropped like punctuation); the rest is refused.
    if raw == b'{"word": "sp\\u0000ace"}':
        assert response.status_code == 200
    else:
        error_text(response)


async def test_v1_undecodable_body_is_refused_as_bad_request(client: httpx.AsyncClient) -> None:
    for path in ("/v1/explain", "/v1/guess"):
        response = await client.post(
            path, content=b"\x8a\xff\x15", headers={"content-type": "application/json"}
        )
        assert response.status_code == 400
        assert response.json()["detail"]


async def test_explain_v1_form_body_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/explain", data={"word": "space"})
    error_text(response)


async def test_model_reports_version_params_data_and_metrics(
    client: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    response = await client.get("/v1/model")
    assert response.status_code == 200
    body = response.json()
    manifest = tiny_index.manifest
    assert body["version"] == tiny_index.version
    # The corpus's location on the machine that built the model is cut to its name.
    source = manifest["params"]["data"]["source"]
    assert source.startswith("/") and source in json.dumps(manifest)
    assert source not in json.dumps(body)
    expected_params = copy.deepcopy(manifest["params"])
    expected_params["data"]["source"] = Path(source).name
    assert body["params"] == expected_params
    expected_data = copy.deepcopy(manifest["data"])
    expected_data["corpus"]["source"] = Path(manifest["data"]["corpus"]["source"]).name
    expected_data["corpus"]["file"] = Path(manifest["data"]["corpus"]["file"]).name
    assert body["data"] == expected_data
    assert body["data"]["corpus"]["sha256"] == manifest["data"]["corpus"]["sha256"]
    assert body["metrics"] == manifest.get("metrics", {})
    assert body["vocabulary"]["words"] == len(tiny_index)
    assert "files" not in body
    # When it was trained: the manifest's `trained_at`, stamped by the training.
    trained = datetime.fromisoformat(body["trained_at"].replace("Z", "+00:00"))
    assert abs(trained.timestamp() - manifest["trained_at"]) < 1e-3
    assert body["promotion"] is None  # the pipeline records no decision in the manifest


# ---- health, page, metrics, logs ----


async def test_healthz_and_readyz_answer_when_loaded(
    client: httpx.AsyncClient, tiny_index: WordIndex
) -> None:
    healthy = (await client.get("/healthz")).json()
    assert healthy == {"status": "ok", "model_version": tiny_index.version}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": tiny_index.version}


async def test_page_links_docs_and_metrics_and_calls_the_typed_api(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    for needle in ('href="/docs"', 'href="/metrics"', '"/v1/explain"', '"/v1/guess"'):
        assert needle in page
    assert (await client.get("/docs")).status_code == 200


async def test_metrics_expose_hatbot_metrics_without_user_words(
    client: httpx.AsyncClient, known: list[str], tiny_index: WordIndex
) -> None:
    await client.get("/explain", params={"word": "zebrafishy", "n_words": 5})
    await client.get("/guess", params={"words": [known[0], "zebrafishy"], "n_words": 5})
    await client.get("/explain", params={"word": "", "n_words": 5})
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert "zebrafishy" not in response.text
    found = samples(response.text)
    assert found[("hatbot_model_loaded", ())] == 1
    assert found[("hatbot_model_info", (("version", tiny_index.version),))] == 1
    assert found[("hatbot_model_loads_total", ())] == 1
    assert found[("hatbot_model_load_failures_total", ())] == 0
    assert found[("hatbot_unknown_words_total", (("endpoint", "explain"),))] >= 1
    assert found[("hatbot_unknown_words_total", (("endpoint", "guess"),))] >= 1
    assert found[("hatbot_answers_total", (("endpoint", "guess"),))] >= 1
    # Every route is labelled by its template, the in-progress gauge included.
    assert found[("http_requests_inprogress", (("handler", "/explain"), ("method", "GET")))] == 0
    assert not [key for key in found if ("handler", "") in key[1]]
    explained = ("handler", "/explain"), ("method", "GET"), ("status", "4xx")
    assert found[("http_requests_total", explained)] >= 1


async def test_metrics_stay_bounded_whatever_is_asked(client: httpx.AsyncClient) -> None:
    """Any method on any path: the in-progress gauge keeps the four answering routes, a
    method outside HTTP's own is `other`, and no `_created` series is exported."""
    methods = ["GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "QUERY", "FOO"]
    paths = ["/", "/explain", "/guess", "/v1/explain", "/v1/guess", "/v1/model", "/healthz"]
    for method in methods:
        for path in [*paths, "/readyz", "/docs", "/nowhere"]:
            await client.request(method, path)
    text = (await client.get("/metrics")).text
    found = samples(text)
    in_progress = {labels for name, labels in found if name == "http_requests_inprogress"}
    assert in_progress == {
        (("handler", "/explain"), ("method", "GET")),
        (("handler", "/guess"), ("method", "GET")),
        (("handler", "/v1/explain"), ("method", "POST")),
        (("handler", "/v1/guess"), ("method", "POST")),
    }
    seen = {dict(labels)["method"] for name, labels in found if name == "http_requests_total"}
    assert seen == {*methods[:8], "other"}
    assert not [name for name, _ in found if name.endswith("_created")]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A Prometheus exposition as {(name, sorted labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_request_logs_method_path_status_and_time(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="hatbot"):
        await client.get("/explain", params={"word": "space", "n_words": 0})
    lines = [r.getMessage() for r in caplog.records if r.name == "hatbot"]
    assert any(
        re.fullmatch(r"method=GET path=/explain status=422 ms=\d+\.\d\d", line) for line in lines
    ), lines


# ---- settings that change the limits, and the store ----


async def test_limits_follow_settings(tiny_store: Path, in_process: Any, known: list[str]) -> None:
    settings = Settings(
        model_store=tiny_store, reload_interval=0, max_n_words=80, max_word_length=8, max_hints=3
    )
    async with in_process(settings) as client:
        many = await client.post("/v1/explain", json={"word": known[0], "n_words": 80})
        assert many.status_code == 200
        assert len(assert_words(many.json()["words"], 80)) == 80
        assert (
            await client.get("/explain", params={"word": known[0], "n_words": 81})
        ).status_code == 422
        assert (await client.post("/v1/explain", json={"word": "a" * 9})).status_code == 422
        assert (
            await client.get("/explain", params={"word": "a" * 9, "n_words": 5})
        ).status_code == 422
        four = ["nasa", "orbit", "moon", "star"]
        assert (await client.post("/v1/guess", json={"words": four})).status_code == 422
        assert (await client.post("/v1/guess", json={"words": four[:3]})).status_code == 200


async def test_empty_store_is_alive_but_not_ready(tmp_path: Path, in_process: Any) -> None:
    async with in_process(Settings(model_store=tmp_path / "empty", reload_interval=0)) as client:
        assert (await client.get("/healthz")).status_code == 200
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["status"] == "not ready"
        for response in (
            await client.get("/explain", params={"word": "space", "n_words": 5}),
            await client.get("/guess", params={"words": ["nasa"], "n_words": 5}),
            await client.post("/v1/explain", json={"word": "space"}),
            await client.post("/v1/guess", json={"words": ["nasa"]}),
            await client.get("/v1/model"),
        ):
            assert response.status_code == 503
            assert "no model" in response.json()["detail"]
        assert (await client.get("/")).status_code == 200
        metrics = (await client.get("/metrics")).text
        assert "hatbot_model_loaded 0.0" in metrics


async def test_readyz_turns_ready_when_a_model_is_promoted(
    tmp_path: Path, tiny_store: Path, in_process: Any
) -> None:
    store = tmp_path / "store"
    store.mkdir()
    async with in_process(Settings(model_store=store, reload_interval=0.05)) as client:
        assert (await client.get("/readyz")).status_code == 503
        version = (tiny_store / "production").read_text().strip()
        shutil.copytree(tiny_store / version, store / version)
        (store / "production").write_text(version + "\n")
        with anyio.fail_after(60):  # a bound, not a timing claim
            while (await client.get("/readyz")).status_code != 200:
                await anyio.sleep(0.05)
        assert (await client.get("/v1/model")).json()["version"] == version


# ---- the OpenAPI document ----


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


async def test_openapi_documents_every_operation_parameter_and_field(
    client: httpx.AsyncClient,
) -> None:
    schema = (await client.get("/openapi.json")).json()
    expected = {
        ("get", "/"),
        ("get", "/explain"),
        ("get", "/guess"),
        ("post", "/v1/explain"),
        ("post", "/v1/guess"),
        ("get", "/v1/model"),
        ("get", "/healthz"),
        ("get", "/readyz"),
    }
    operations = {(m, p): op for p, item in schema["paths"].items() for m, op in item.items()}
    assert set(operations) == expected
    for (method, path), op in operations.items():
        where = f"{method.upper()} {path}"
        assert op.get("summary") and op.get("description"), where
        for status, response in op["responses"].items():
            assert response.get("description"), (where, status)
        for parameter in op.get("parameters", []):
            assert parameter.get("description"), (where, parameter["name"])
            examples = parameter["schema"].get("examples") or parameter.get("examples")
            assert examples, (where, parameter["name"])
        if path in ("/explain", "/guess", "/v1/explain", "/v1/guess"):
            assert {"200", "422", "503"} <= set(op["responses"]), where
    for name, component in schema["components"]["schemas"].items():
        assert component.get("description"), name
        for field, spec in component.get("properties", {}).items():
            assert spec.get("description"), (name, field)
            assert spec.get("examples"), (name, field)
    for name in ("ExplainRequest", "GuessRequest"):
        assert schema["components"]["schemas"][name]["examples"], name
    assert "/metrics" not in schema["paths"]


async def test_openapi_guess_words_example_is_a_list_of_hints(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    (words,) = [p for p in schema["paths"]["/guess"]["get"]["parameters"] if p["name"] == "words"]
    assert words["schema"]["type"] == "array"
    for example in words["schema"]["examples"]:
        assert isinstance(example, list) and all(isinstance(w, str) for w in example)
