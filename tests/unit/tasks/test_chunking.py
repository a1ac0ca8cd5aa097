"""split_by_tokens: chunks under the limit, on paragraph, then sentence, then word boundaries."""

from __future__ import annotations

import pytest

from service.services.tasks.chunking import split_by_tokens


def words(text: str) -> int:
    """A word-count tokenizer."""
    return len(text.split())


def chars(text: str) -> int:
    """A tokenizer for text without spaces (e.g. Chinese): one token per character."""
    return len("".join(text.split()))


def sentence(tag: str, n: int) -> str:
    return " ".join(f"{tag}w{i}" for i in range(n)) + "."


def paragraph(tag: str, sentences: int, n: int) -> str:
    return " ".join(sentence(f"{tag}s{k}", n) for k in range(sentences))


PARAGRAPHS = "\n\n".join(paragraph(f"p{i}", 2, 4) for i in range(6))  # 8 tokens each
SENTENCES = paragraph("p", 12, 5)  # one paragraph of 60 tokens, sentences of 5
LONG_SENTENCE = sentence("x", 50)
MIXED = "\n\n".join(
    [paragraph("a", 1, 3), SENTENCES, LONG_SENTENCE, paragraph("b", 3, 4), "  \n\n  ", "end."]
)

TEXTS = [
    pytest.param(PARAGRAPHS, 20, id="paragraphs"),
    pytest.param(SENTENCES, 12, id="sentences"),
    pytest.param(LONG_SENTENCE, 10, id="one-long-sentence"),
    pytest.param(MIXED, 12, id="mixed"),
    pytest.param(MIXED, 7, id="mixed-tight"),
    pytest.param(MIXED, 1000, id="all-fits"),
    pytest.param("a\n\n\n\nb\n \t\nc", 3, id="odd-paragraph-breaks"),
]


@pytest.mark.parametrize(("text", "limit"), TEXTS)
def test_chunks_fit_and_keep_every_word_in_order(text: str, limit: int) -> None:
    chunks = split_by_tokens(text, limit, words)
    assert chunks
    assert all(chunk.strip() for chunk in chunks)
    assert all(words(chunk) <= limit for chunk in chunks), [words(c) for c in chunks]
    assert [w for chunk in chunks for w in chunk.split()] == text.split()


def test_a_text_that_fits_is_one_chunk() -> None:
    assert split_by_tokens(PARAGRAPHS, 1000, words) == [PARAGRAPHS]


@pytest.mark.parametrize(
    "text", [pytest.param("", id="empty"), pytest.param(" \n\n \n", id="blank")]
)
def test_a_blank_text_has_no_chunks(text: str) -> None:
    assert split_by_tokens(text, 10, words) == []


def test_paragraphs_that_fit_are_never_split_and_are_packed_together() -> None:
    paragraphs = PARAGRAPHS.split("\n\n")
    chunks = split_by_tokens(PARAGRAPHS, 20, words)
    assert 1 < len(chunks) < len(paragraphs)  # several paragraphs share a chunk
    assert [p for chunk in chunks for p in chunk.split("\n\n")] == paragraphs


def test_a_paragraph_over_the_limit_is_split_between_sentences() -> None:
    sentences = [sentence(f"ps{k}", 5) for k in range(12)]
    assert " ".join(sentences) == SENTENCES
    chunks = split_by_tokens(SENTENCES, 12, words)
    assert len(chunks) > 1
    for chunk in chunks:
        assert chunk.endswith(".")
    # Every sentence lies whole inside exactly one chunk.
    for s in sentences:
        assert sum(s in chunk for chunk in chunks) == 1, s


def test_a_sentence_over_the_limit_is_cut_between_words() -> None:
    chunks = split_by_tokens(LONG_SENTENCE, 10, words)
    assert len(chunks) > 1
    assert all(words(chunk) <= 10 for chunk in chunks)
    original = LONG_SENTENCE.split()
    pieces = [chunk.split() for chunk in chunks]
    assert [w for piece in pieces for w in piece] == original  # no word was broken


def test_short_sentences_around_a_long_one_stay_whole() -> None:
    text = f"Short one. {LONG_SENTENCE} Short two."
    chunks = split_by_tokens(text, 10, words)
    assert any("Short one." in chunk for chunk in chunks)
    assert any("Short two." in chunk for chunk in chunks)
    assert all(words(chunk) <= 10 for chunk in chunks)


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        pytest.param("第一句话很短。" * 30, 50, id="chinese-full-stops"),
        pytest.param("これは文です\uff01それは質問ですか\uff1f" * 10, 40, id="japanese-marks"),
        pytest.param("第一句话很短。 " * 30, 50, id="chinese-with-spaces"),
    ],
)
def test_text_without_spaces_is_split_at_its_sentence_ends(text: str, limit: int) -> None:
    chunks = split_by_tokens(text, limit, chars)
    assert all(chars(chunk) <= limit for chunk in chunks), [chars(c) for c in chunks]
    assert "".join("".join(chunk.split()) for chunk in chunks) == "".join(text.split())
    assert all(chunk.endswith(("\u3002", "\uff01", "\uff1f")) for chunk in chunks)


def test_counting_stays_linear_in_the_text() -> None:
    counted: list[str] = []

    def counting(text: str) -> int:
        counted.append(text)
        return words(text)

    text = "\n\n".join([SENTENCES] * 20 + [LONG_SENTENCE] * 5)
    split_by_tokens(text, 12, counting)
    # Each paragraph, sentence and word is counted at most once: never a growing chunk.
    assert sum(len(t) for t in counted) <= 3 * len(text)
