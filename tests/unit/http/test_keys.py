"""The key store (constant-time lookup) and the key file's format and errors."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from pydantic import SecretStr

from service.http.keys import (
    ApiKey,
    KeyFileError,
    KeyStore,
    build_key_store,
    key_digest,
    load_key_file,
)

KEY_A = "sk-team-a-0123456789"
KEY_B = "sk-team-b-9876543210"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keys.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_key_id_is_a_prefix_of_the_keys_sha256() -> None:
    key = ApiKey(key_digest(KEY_A.encode()))
    assert key.key_id == sha(KEY_A)[:12]
    assert KEY_A not in repr(key)


def test_find_compares_with_every_key_in_constant_time(
    compare_digest_calls: list[tuple[bytes, bytes]],
) -> None:
    keys = [ApiKey(key_digest(f"sk-{i}".encode())) for i in range(5)]
    store = KeyStore(keys)
    compared = compare_digest_calls
    assert store.find(b"sk-0") is keys[0]  # a match at the start does not stop the loop
    assert [b for _, b in compared] == [k.digest for k in keys]
    compared.clear()
    assert store.find(b"sk-wrong") is None
    assert [b for _, b in compared] == [k.digest for k in keys]
    assert all(len(a) == len(b) == 32 for a, b in compared)


def test_a_key_file_with_hashed_and_plain_keys_and_limits(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[[keys]]
name = "team-a"
key_sha256 = "{sha(KEY_A).upper()}"
requests_per_minute = 600
tokens_per_minute = 200000
priority = "high"

[[keys]]
name = "batch"
key = "{KEY_B}"
priority = "low"

[[keys]]
name = "plain"
key_sha256 = "{sha("sk-plain")}"
""",
    )
    a, b, plain = load_key_file(path)
    assert (a.name, a.requests_per_minute, a.tokens_per_minute, a.priority) == (
        "team-a",
        600,
        200000,
        -10,
    )
    assert a.digest == key_digest(KEY_A.encode())
    assert (b.name, b.priority, b.requests_per_minute) == ("batch", 10, None)
    assert b.digest == key_digest(KEY_B.encode())
    assert (plain.priority, plain.tokens_per_minute) == (0, None)


def test_settings_keys_and_a_file_make_one_store(tmp_path: Path) -> None:
    path = write(tmp_path, f'[[keys]]\nname = "b"\nkey = "{KEY_B}"\n')
    store = build_key_store([SecretStr(KEY_A)], path)
    assert store is not None
    assert len(store) == 2
    found = store.find(KEY_A.encode())
    assert found is not None
    assert found.name is None
    found = store.find(KEY_B.encode())
    assert found is not None
    assert found.name == "b"


def test_no_keys_means_no_store() -> None:
    assert build_key_store([], None) is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("keys = [", "not valid TOML"),
        ("", "no [[keys]] entries"),
        ("[[key]]\nname = 'a'", "unknown top-level field(s) key"),
        ("[[keys]]\nkey = 'sk-x'", "`name` is required"),
        ("[[keys]]\nname = 'a'", "exactly one of `key` and `key_sha256`"),
        (f"[[keys]]\nname = 'a'\nkey = 'sk-x'\nkey_sha256 = '{'0' * 64}'", "exactly one"),
        ("[[keys]]\nname = 'a'\nkey_sha256 = 'abc'", "64 hex characters"),
        ("[[keys]]\nname = 'a'\nkey = ''", "the key is empty"),
        ("[[keys]]\nname = 'a'\nkey = 'sk x'", "whitespace"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\npriority = 'urgent'", "priority must be one of"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\nrequests_per_minute = 0", "whole number >= 1"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\ntokens_per_minute = 1.5", "whole number >= 1"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\nrpm = 5", "unknown field(s) rpm"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\n[[keys]]\nname = 'a'\nkey = 'sk-y'", "duplicate"),
    ],
)
def test_a_bad_key_file_is_refused_with_a_clear_message(
    tmp_path: Path, text: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(KeyFileError, match=r"keys\.toml") as raised:
        build_key_store([], path)
    assert message in str(raised.value)
    assert "sk-x" not in str(raised.value)


def test_a_missing_key_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="cannot be read"):
        build_key_store([], tmp_path / "nope.toml")


def test_the_same_key_twice_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = write(tmp_path, f"[[keys]]\nname = 'a'\nkey_sha256 = '{sha(KEY_A)}'\n")
    with pytest.raises(KeyFileError, match=r"given twice: api_keys\[0\] and 'a'") as raised:
        build_key_store([SecretStr(KEY_A)], path)
    assert KEY_A not in str(raised.value)


def test_a_blank_settings_key_is_refused() -> None:
    with pytest.raises(KeyFileError, match=r"api_keys\[1\]: the key is empty"):
        build_key_store([SecretStr(KEY_A), SecretStr("")], None)
