"""SHA-512 crypt written from the specification, checked against its own test vectors and the system's crypt(3)."""

from __future__ import annotations

import random
import re
import string
import warnings

import pytest

from server.wukongs import passwords

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import crypt  # deprecated since 3.11 and gone in 3.13: only the reference here, never in server/

CRYPT_CHARACTERS = string.ascii_letters + string.digits + "./"
SHA512_HASH = re.compile(r"\$6\$(rounds=\d+\$)?[./0-9A-Za-z]{1,16}\$[./0-9A-Za-z]{86}")


# The SHA-512 vectors of Ulrich Drepper's "Unix crypt using SHA-256 and SHA-512" (each also checked against the
# system's crypt(3) while writing this test, except the last: libxcrypt refuses rounds below 1000 with "*0" where the
# specification clamps them).
@pytest.mark.parametrize(
    ("password", "salt", "rounds", "expected"),
    [
        pytest.param(
            "Hello world!",
            "saltstring",
            5000,
            "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1",
            id="default-rounds",
        ),
        pytest.param(
            "Hello world!",
            "saltstringsaltstring",
            10000,
            "$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs"
            "/y3RnOaw5v.",
            id="salt-cut-to-16",
        ),
        pytest.param(
            # The specification asks for rounds=5000 explicitly and so keeps it in the hash; the default leaves it out.
            "This is just a test",
            "toolongsaltstring",
            5000,
            "$6$toolongsaltstrin$lQ8jolhgVRVhY4b5pZKaysCLi0QBxGoNeKQzQ3glMhwllF7oGDZxUhx1yxdYcz/e1JSbq3y6JMxxl8audkUEm0",
            id="explicit-5000",
        ),
        pytest.param(
            "a very much longer text to encrypt.  This one even stretches over morethan one line.",
            "anotherlongsaltstring",
            1400,
            "$6$rounds=1400$anotherlongsalts$POfYwTEok97VWcjxIiSOjiykti.o/pQs.wPvMxQ6Fm7I6IoYN3CmLs66x9t0oSwbtEW7o7UmJEiD"
            "wGqd8p4ur1",
            id="password-over-64-bytes",
        ),
        pytest.param(
            "we have a short salt string but not a short password",
            "short",
            77777,
            "$6$rounds=77777$short$WuQyW2YR.hBNpjjRhpYD/ifIw05xdfeEyQoMxIXbkvr0gge1a1x3yRULJ5CCaUeOxFmtlcGZelFl5CxtgfiA"
            "c0",
            id="short-salt",
        ),
        pytest.param(
            "a short string",
            "asaltof16chars..",
            123456,
            "$6$rounds=123456$asaltof16chars..$BtCwjqMJGx5hrJhZywWvt0RLE8uZ4oPwcelCjmw2kSYu.Ec6ycULevoBK25fs2xXgMNrCzIMVc"
            "gEJAstJeonj1",
            id="salt-of-16",
        ),
        pytest.param(
            "the minimum number is still observed",
            "roundstoolow",
            10,
            "$6$rounds=1000$roundstoolow$kUMsbe306n21p9R.FRkW3IGn.S9NPN0x50YhH1xhLsPuWGsUSklZt58jaTfF4ZEQpyUNGc0dqbpBYYBa"
            "HHrsX.",
            id="rounds-clamped-to-1000",
        ),
    ],
)
def test_specification_vectors(password: str, salt: str, rounds: int, expected: str) -> None:
    assert passwords.hash_password(password, salt=salt, rounds=rounds) == expected


def _random_password(rng: random.Random) -> str:
    """Around the 64-byte digest size and beyond, ASCII or not. At most 127 characters (508 bytes): libxcrypt refuses
    passphrases of 512 bytes or more."""
    length = rng.choice([0, 1, 7, 8, 63, 64, 65, 127, rng.randrange(128)])
    alphabet = rng.choice([string.printable, CRYPT_CHARACTERS, "äöü€漢字🙂 ", string.ascii_letters + "ñ€"])
    return "".join(rng.choice(alphabet) for _ in range(length))


@pytest.mark.parametrize("rounds", [5000, 10000])
@pytest.mark.parametrize("seed", range(24))
def test_agrees_with_system_crypt(seed: int, rounds: int) -> None:
    rng = random.Random(seed * 7919 + rounds)  # noqa: S311 - test data, not secrets
    password = _random_password(rng)
    salt = "".join(rng.choice(CRYPT_CHARACTERS) for _ in range(rng.randint(1, 16)))
    setting = "$6$" if rounds == 5000 else f"$6$rounds={rounds}$"

    assert passwords.hash_password(password, salt=salt, rounds=rounds) == crypt.crypt(password, setting + salt)


def test_rounds_above_the_maximum_are_clamped(monkeypatch: pytest.MonkeyPatch) -> None:
    # 999999999 rounds take hours in pure Python, so the digest is stubbed: the clamp shows in the setting.
    monkeypatch.setattr(passwords, "_sha512_crypt", lambda password, salt, rounds: bytes(64))

    assert passwords.hash_password("secret", salt="abc", rounds=10**12).startswith("$6$rounds=999999999$abc$")


def test_random_salt_is_16_crypt_characters_and_verifies() -> None:
    hashed = passwords.hash_password("correct horse battery staple")

    salt = hashed.split("$")[2]
    assert len(salt) == 16
    assert set(salt) <= set(CRYPT_CHARACTERS)
    assert SHA512_HASH.fullmatch(hashed)
    assert crypt.crypt("correct horse battery staple", hashed) == hashed
    assert crypt.crypt("correct horse battery stapler", hashed) != hashed


def test_random_salts_differ() -> None:
    salts = {passwords.hash_password("same password").split("$")[2] for _ in range(20)}

    assert len(salts) == 20


@pytest.mark.parametrize("salt", ["", "has space", "dollar$sign", "colon:", "ünïcode", "new\nline"], ids=repr)
def test_refuses_a_salt_crypt_could_not_store(salt: str) -> None:
    with pytest.raises(ValueError, match="a crypt salt is one or more of the characters"):
        passwords.hash_password("secret", salt=salt)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(crypt.crypt("a password", crypt.mksalt(crypt.METHOD_SHA512)), id="sha512"),
        pytest.param(crypt.crypt("a password", crypt.mksalt(crypt.METHOD_SHA256)), id="sha256"),
        pytest.param(crypt.crypt("a password", crypt.mksalt(crypt.METHOD_BLOWFISH)), id="bcrypt-2b"),  # noqa: S324 - a sample
        pytest.param(crypt.crypt("a password", crypt.mksalt(crypt.METHOD_MD5)), id="md5"),  # noqa: S324 - a sample
        pytest.param(crypt.crypt("a password", "$5$rounds=10000$saltstring"), id="sha256-rounds"),
        pytest.param(crypt.crypt("a password", "$y$j9T$F5Jx5fExrKuPp53xLKQ..1$"), id="yescrypt"),
        pytest.param(passwords.hash_password("a password", rounds=10000), id="ours-rounds"),
        pytest.param(passwords.hash_password("a password"), id="ours"),
        pytest.param("$2a$10$" + "a" * 53, id="bcrypt-2a"),
        pytest.param("$2y$04$" + "a" * 53, id="bcrypt-2y"),
    ],
)
def test_looks_like_crypt_hash_accepts(value: str) -> None:
    assert passwords.looks_like_crypt_hash(value)


SHA512 = passwords.hash_password("a password", salt="saltsalt")


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("", id="empty"),
        pytest.param("a password", id="plain-text"),
        pytest.param(crypt.crypt("a password", "ab"), id="des"),
        pytest.param("!", id="locked"),
        pytest.param("*", id="disabled"),
        pytest.param("!" + SHA512, id="locked-hash"),
        pytest.param(SHA512 + "\n", id="trailing-newline"),
        pytest.param(" " + SHA512, id="leading-space"),
        pytest.param(SHA512[:-1], id="digest-too-short"),
        pytest.param(SHA512 + "a", id="digest-too-long"),
        pytest.param(SHA512.replace("$6$", "$7$"), id="unknown-method"),
        pytest.param(SHA512.replace("$6$", "$6$rounds=12$"), id="rounds-too-few"),
        pytest.param(SHA512.replace("$6$", "$6$rounds=\u0661\u0660\u0660\u0660$"), id="arabic-digits"),
        pytest.param("$6$" + "s" * 17 + "$" + "a" * 86, id="salt-too-long"),
        pytest.param("$6$$" + "a" * 86, id="no-salt"),
        pytest.param("$2b$03$" + "a" * 53, id="bcrypt-cost-too-low"),
        pytest.param("$2x$10$" + "a" * 53, id="bcrypt-2x"),
        pytest.param("$1$" + "s" * 9 + "$" + "a" * 22, id="md5-salt-too-long"),
        pytest.param("$y$j9T$salt$" + "a" * 42, id="yescrypt-too-short"),
    ],
)
def test_looks_like_crypt_hash_refuses(value: str) -> None:
    assert not passwords.looks_like_crypt_hash(value)


@pytest.mark.parametrize(
    ("password", "problem"),
    [
        pytest.param("s3cret!!", None, id="8-characters"),
        pytest.param("x" * 128, None, id="128-characters"),
        pytest.param("correct horse battery staple", None, id="spaces"),
        pytest.param("pässwörd-漢字🙂", None, id="unicode"),
        pytest.param("", "must be 8 to 128 characters long; got 0", id="empty"),
        pytest.param("short", "must be 8 to 128 characters long; got 5", id="too-short"),
        pytest.param("x" * 129, "must be 8 to 128 characters long; got 129", id="too-long"),
        pytest.param("tab\there!", "must not contain control characters such as tabs or line breaks", id="tab"),
        pytest.param("line\nbreak", "must not contain control characters such as tabs or line breaks", id="newline"),
        pytest.param("nul\0byte!", "must not contain control characters such as tabs or line breaks", id="nul"),
        pytest.param("delete\x7fme", "must not contain control characters such as tabs or line breaks", id="del"),
        pytest.param("c1\x85control", "must not contain control characters such as tabs or line breaks", id="c1"),
    ],
)
def test_check_password_strength(password: str, problem: str | None) -> None:
    assert passwords.check_password_strength(password) == problem
