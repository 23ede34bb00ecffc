"""Smoke test of a deployed bot: ready, serving the expected model, speaking the host protocol."""

from __future__ import annotations

import asyncio
import time

import httpx

from hatbot.game.players import HttpPlayer


async def _wait_ready(client: httpx.AsyncClient, url: str, timeout: float) -> str | None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = await client.get(f"{url}/readyz")
            if response.status_code == 200:
                return None
            problem = f"/readyz answered {response.status_code}"
        except httpx.HTTPError as exc:
            problem = f"/readyz unreachable: {exc}"
        if time.monotonic() > deadline:
            return problem
        await asyncio.sleep(0.5)


async def smoke_test(url: str, expect_version: str | None, timeout: float = 60.0) -> list[str]:
    """Problems found with the bot at `url`; an empty list means it passed."""
    url = url.rstrip("/")
    problems: list[str] = []
    async with httpx.AsyncClient(timeout=5.0) as client:
        problem = await _wait_ready(client, url, timeout)
        if problem:
            return [problem]
        model = (await client.get(f"{url}/v1/model")).json()
        if expect_version and model.get("version") != expect_version:
            problems.append(f"serving model {model.get('version')}, expected {expect_version}")
        player = HttpPlayer("smoke", url, client=client)
        explanation = await player.explain("space", 5)
        if explanation.failure or len(explanation.words) != 5:
            problems.append(f"/explain gave {explanation.words} ({explanation.failure})")
        guesses = await player.guess(explanation.words[:2] or ["nasa"], 5)
        if guesses.failure or not guesses.words:
            problems.append(f"/guess gave {guesses.words} ({guesses.failure})")
        if (await client.get(f"{url}/explain", params={"word": "space"})).status_code != 422:
            problems.append("/explain without n_words was not refused with 422")
    return problems
