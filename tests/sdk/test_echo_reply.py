"""The echo bot's rule (examples/echo_bot.py), without a server."""

from __future__ import annotations

import random

from examples.echo_bot import reply


def test_the_bot_answers_echo_and_roll() -> None:
    rng = random.Random(7)
    assert reply("  hi  ", rng) == "echo: hi"
    assert reply("/roll", rng) in {f"🎲 {n} (d6)" for n in range(1, 7)}
    assert reply("/roll 1", rng) == "usage: /roll [sides], sides from 2 to 1000000"
    assert reply("/roll x", rng) == "usage: /roll [sides], sides from 2 to 1000000"
    assert reply("/dance", rng) == "unknown command /dance; try /roll"
    assert reply("   ", rng) is None
