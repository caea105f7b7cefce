"""Which mode a search runs in, and where its matches are (storage/search.py,
services/search.py): pure rules, so tested without a server."""

from __future__ import annotations

import pytest

from hubbub.domain.errors import BadRequest
from hubbub.services.search import highlight
from hubbub.storage.search import choose_mode, query_words


@pytest.mark.parametrize(("query", "mode"), [
    ("deploy", "words"), ("deploy friday", "words"), ("  Grüße  Köln ", "words"),
    ("abc", "words"), ("ab", "substring"), ("zq", "substring"), ("e_c", "substring"),
    ("100%", "substring"), ("C:\\temp", "substring"), ("what?", "substring"),
    ("a b", "substring"), ("deploy a", "substring"), ("im büro", "words"),
])
def test_auto_runs_words_only_for_queries_of_words(query: str,
                                                                   mode: str) -> None:
    assert choose_mode(query, "auto") == mode


def test_an_explicit_mode_wins() -> None:
    assert choose_mode("zq", "words") == "words"
    assert choose_mode("deploy", "substring") == "substring"


def test_a_words_search_needs_a_word() -> None:
    with pytest.raises(BadRequest, match=r"`\$\.query`"):
        choose_mode("%% _", "words")


def test_query_words_are_distinct_lower_case_runs_of_letters_and_digits() -> None:
    assert query_words("Deploy, deploy v2_final ÄRGER!") == ["deploy", "v2", "final",
                                                             "ärger"]


def test_word_highlights_are_whole_words_beginning_with_a_query_word() -> None:
    content = "Deploying 🚀 redeploy DEPLOY"
    assert highlight(content, "deploy", "words") == [(0, 9), (content.rindex("D"), 6)]


def test_substring_highlights_survive_case_folding_that_lengthens() -> None:
    """"İ" lowers to two code points; the ranges still index the original content."""
    content = "İstanbul, istanbul, ISTANBUL"
    assert highlight(content, "stan", "substring") == [(1, 4), (11, 4), (21, 4)]
    assert highlight("xİx", "i̇", "substring") == [(1, 1)]
    assert highlight("aaaa", "aa", "substring") == [(0, 2), (2, 2)]
