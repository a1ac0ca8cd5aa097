"""The script constraint's language, checked with xgrammar itself (the backend vLLM hands it to):
which texts it lets through, for every script it knows."""

# Texts in other scripts, with their own punctuation, are the point here (not confusables).
# ruff: noqa: RUF001

from __future__ import annotations

import pytest
import xgrammar as xgr

from service.services.tasks.script_grammar import SCRIPTS, script_constraint, script_grammar

# Strings are matched by their bytes; the one token is the end of the text.
_COMPILER = xgr.GrammarCompiler(xgr.TokenizerInfo(["<eos>"], stop_token_ids=[0]))


def accepts(script: str, text: str, *, complete: bool = False, continuation: bool = False) -> bool:
    """Whether the grammar lets the model write `text` and stop there."""
    grammar = script_grammar(script, complete=complete, continuation=continuation)
    assert grammar is not None
    matcher = xgr.GrammarMatcher(_COMPILER.compile_grammar(grammar))
    return bool(matcher.accept_string(text) and matcher.accept_token(0))


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("市议会周二开会。", id="a-sentence"),
        pytest.param("苹果公司发布了 iPhone 15 手机。", id="a-name-and-a-number"),
        pytest.param("这是 Apple Inc Corp 公司的报告。", id="three-latin-words"),
        pytest.param("价格为3.5元。下一句！", id="a-decimal-point"),
        pytest.param("“你好”，他说。", id="quotes"),
        pytest.param("- 第一点\n- 第二点。", id="bullets"),
        pytest.param("1. 第一\n2. 第二。", id="a-numbered-list"),
        pytest.param("\n第一段。\n\n第二段。\n", id="paragraphs"),
        pytest.param("会议在周二举行", id="no-stop"),
    ],
)
def test_chinese_text_passes(text: str) -> None:
    assert accepts("han", text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("The council met on Tuesday.", id="an-english-sentence"),
        pytest.param("会议在周二举行。The vote was close.", id="an-english-sentence-after"),
        pytest.param("这是 Apple Inc Corp Ltd 公司。", id="four-latin-words"),
        pytest.param("这是 A B C, D 公司。", id="latin-runs-joined-by-a-comma"),
        pytest.param("2024年的报告。", id="a-sentence-starting-with-a-digit"),
        # After Latin words a letter of the script comes soon: no running on in numbers.
        pytest.param("他说 hello 2023, 2024, 2025, 2026 年。", id="numbers-after-latin"),
        pytest.param("会议 в пятницу。", id="another-script"),
        pytest.param("", id="nothing"),
    ],
)
def test_other_text_is_refused(text: str) -> None:
    assert not accepts("han", text)


def test_complete_text_ends_at_a_sentence_end() -> None:
    assert accepts("han", "会议在周二举行。", complete=True)
    assert accepts("han", "会议在周二举行。\n", complete=True)
    assert not accepts("han", "会议在周二举行", complete=True)
    assert not accepts("han", "会议在 Tuesday", complete=True)


def test_a_continuation_goes_on_mid_sentence() -> None:
    assert accepts("han", "，然后他们回家了。", continuation=True)
    assert accepts("latin", " there was a king.", continuation=True)
    assert not accepts("han", " there was a king.", continuation=True)
    assert not accepts("latin", " there was a king.")  # a reply starts with a letter
    # What the default model wrote under an unbounded run after its Latin words.
    assert not accepts("han", ', the city of "2023" - 2023, 2024, 2025', continuation=True)


@pytest.mark.parametrize(
    ("script", "good", "bad"),
    [
        pytest.param("kana", "東京で会議が開かれた。", "The meeting was held.", id="japanese"),
        pytest.param("hangul", "회의가 화요일에 열렸다.", "会议在周二举行。", id="korean"),
        pytest.param(
            "cyrillic",
            "Совет собрался во вторник. Об этом сообщает BBC News.",
            "Hello.",
            id="russian",
        ),
        pytest.param("greek", "Το συμβούλιο συνεδρίασε την Τρίτη.", "Hello.", id="greek"),
        pytest.param("arabic", "اجتمع المجلس يوم الثلاثاء.", "Hello.", id="arabic"),
        pytest.param("hebrew", "המועצה התכנסה ביום שלישי.", "Hello.", id="hebrew"),
        pytest.param("devanagari", "परिषद की बैठक मंगलवार को हुई।", "Hello.", id="hindi"),
        pytest.param("thai", "สภาประชุมในวันอังคาร", "Hello.", id="thai"),
        pytest.param("latin", "The council met on Tuesday. It voted!", "Совет.", id="latin"),
    ],
)
def test_every_script_has_its_own_letters(script: str, good: str, bad: str) -> None:
    assert accepts(script, good)
    assert not accepts(script, bad)


def test_a_constraint_for_every_known_script_and_none_for_others() -> None:
    for script in SCRIPTS:
        constraint = script_constraint(script, complete=True)
        assert constraint is not None and constraint.grammar is not None
    assert script_constraint("other", complete=True) is None
    assert script_constraint(None, complete=True) is None
