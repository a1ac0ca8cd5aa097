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


def test_find_makes_one_comparison_of_digests_found_or_not(
    compare_digest_calls: list[tuple[bytes, bytes]],
) -> None:
    keys = [ApiKey(key_digest(f"sk-{i}".encode())) for i in range(5)]
    store = KeyStore(keys)
    compared = compare_digest_calls
    assert store.find(b"sk-3") is keys[3]
    assert compared == [(key_digest(b"sk-3"), keys[3].digest)]
    compared.clear()
    assert store.find(b"sk-wrong") is None
    assert len(compared) == 1  # as for a match: the time does not say whether one was found
    ((presented, stored),) = compared
    assert presented == key_digest(b"sk-wrong") and len(stored) == 32
    assert stored not in {key.digest for key in keys}


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


def test_a_key_file_with_weights_and_budgets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        f"""
[[keys]]
name = "team-a"
key = "{KEY_A}"
weight = 2.5
tokens_per_day = 100000
tokens_per_month = 2000000

[[keys]]
name = "team-b"
key = "{KEY_B}"
""",
    )
    a, b = load_key_file(path)
    assert (a.weight, a.tokens_per_day, a.tokens_per_month) == (2.5, 100_000, 2_000_000)
    assert (b.weight, b.tokens_per_day, b.tokens_per_month) == (1.0, None, None)
    assert a.source == b.source == "file"


def test_replaced_keys_are_accepted_and_expired_ones_are_not() -> None:
    old, new = ApiKey(key_digest(b"sk-old")), ApiKey(key_digest(b"sk-new"))
    expired = ApiKey(key_digest(b"sk-gone"), expires_at=1.0)  # 1970: long past
    store = KeyStore([old])
    store.replace([old, new, expired])
    assert store.find(b"sk-new") is new
    assert store.find(b"sk-gone") is None
    store.replace([new])
    assert store.find(b"sk-old") is None
    with pytest.raises(ValueError, match="at least one key"):
        store.replace([])


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
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\nweight = 0", "weight must be a number > 0"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\nweight = 'heavy'", "weight must be a number"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\nweight = 1e6", "<= 1000"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\ntokens_per_day = -5", "whole number >= 1"),
        ("[[keys]]\nname = 'a'\nkey = 'sk-x'\ntokens_per_month = 0", "whole number >= 1"),
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
