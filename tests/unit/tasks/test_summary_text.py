"""Trimming cut-off summaries and telling a text's script (`summary_text.py`)."""

from __future__ import annotations

import pytest

from service.services.tasks.languages import script
from service.services.tasks.summary_text import (
    ends_mid_sentence,
    language_for,
    trim_to_sentence,
)

TRIMS = [
    pytest.param(
        "The council met. It voted to fund the bridge. Then the mayor said",
        "paragraph",
        "The council met. It voted to fund the bridge.",
        id="english",
    ),
    pytest.param(
        "会议在周二举行。议会投票决定资助这座桥。市长随后表示",
        "paragraph",
        "会议在周二举行。议会投票决定资助这座桥。",
        id="chinese-no-spaces",
    ),
    pytest.param('He said "stop." Then he', "paragraph", 'He said "stop."', id="closing-quote"),
    pytest.param(
        "Prices rose 3.5 percent in", "paragraph", "Prices rose 3.5 percent in", id="none"
    ),
    pytest.param(
        "- one thing\n- two things\n- three th", "bullets", "- one thing\n- two things", id="bullet"
    ),
    pytest.param("- a bullet cut sho", "bullets", "- a bullet cut sho", id="single-bullet"),
    pytest.param("Council funds bridge. Mayor", "headline", "Council funds bridge. Mayor", id="hl"),
    pytest.param("Это первое. Это второе предло", "paragraph", "Это первое.", id="cyrillic"),
    pytest.param(
        "会议在周二举行。要点如下\n\n1.", "paragraph", "会议在周二举行。", id="list-number-alone"
    ),
    pytest.param("Step 1. Unplug it. Then", "paragraph", "Step 1. Unplug it.", id="number-in-line"),
]


@pytest.mark.parametrize(("text", "style", "expected"), TRIMS)
def test_trim_to_the_last_complete_sentence(text: str, style: str, expected: str) -> None:
    assert trim_to_sentence(text, style) == expected


SCRIPTS = [
    pytest.param("The city council met on Tuesday.", "latin", id="english"),
    pytest.param("市议会周二开会,讨论了新桥的预算。", "han", id="chinese"),
    pytest.param("これは日本語の文です。", "kana", id="japanese"),
    pytest.param("시의회는 화요일에 회의를 열었다.", "hangul", id="korean"),
    pytest.param("这是一个中文句子 with some English", "han", id="mostly-chinese"),
    pytest.param("12345 !!!", None, id="no-letters"),
]


@pytest.mark.parametrize(("text", "expected"), SCRIPTS)
def test_script(text: str, expected: str | None) -> None:
    assert script(text) == expected


def test_the_language_field_overrides_detection() -> None:
    assert language_for("会议在周二举行。", None) == ("Chinese", "han")
    assert language_for("会议在周二举行。", "English") == ("English", "latin")
    assert language_for("The council met.", None) == (None, "latin")
    assert language_for("The council met.", "Klingon") == ("Klingon", None)


ENDS = [
    pytest.param("The council met. It voted.", "paragraph", False, id="paragraph-complete"),
    pytest.param("The council met. It voted to", "paragraph", True, id="paragraph-cut"),
    pytest.param('He said "stop."', "paragraph", False, id="closing-quote"),
    pytest.param("Prices rose 3.5", "paragraph", True, id="decimal-is-no-end"),
    pytest.param("The council met.\n\n2.", "paragraph", True, id="list-number-is-no-end"),
    pytest.param("会议在周二举行。议会投票决定资助", "paragraph", True, id="chinese-cut"),
    pytest.param("会议在周二举行。", "paragraph", False, id="chinese-complete"),
    pytest.param("- One thing.\n- Two things.", "bullets", False, id="bullets-complete"),
    pytest.param("- One thing.\n- Two thi", "bullets", True, id="bullets-cut"),
    pytest.param("- one thing\n- two things", "bullets", False, id="bullets-of-phrases"),
    pytest.param("- One thing.\n- Two things,\n  and more", "bullets", True, id="wrapped-cut"),
    pytest.param("No bullets at all, cut", "bullets", True, id="bullets-as-prose"),
    pytest.param("Council funds bridge and", "headline", False, id="headline"),
    pytest.param("", "paragraph", False, id="empty"),
]


@pytest.mark.parametrize(("text", "style", "expected"), ENDS)
def test_ends_mid_sentence(text: str, style: str, expected: bool) -> None:
    assert ends_mid_sentence(text, style) is expected
