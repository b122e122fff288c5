"""Resource quantities as a Wukong spec writes them: exact bytes and clear refusals."""

from __future__ import annotations

import pytest

from server import quantity

GI = 2**30


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("512", 512),
        ("1Ki", 1024),
        ("512Mi", 512 * 2**20),
        ("20Gi", 20 * GI),
        ("1.5Gi", 1610612736),
        ("1.5Ti", 3 * 2**39),
        ("1Pi", 2**50),
        ("7Ei", 7 * 2**60),
        ("1k", 1000),
        ("1K", 1000),
        ("1.5G", 1_500_000_000),
        ("2T", 2 * 10**12),
        ("3P", 3 * 10**15),
        ("9E", 9 * 10**18),
        ("007Gi", 7 * GI),
        ("9223372036854775807", 2**63 - 1),
    ],
    ids=lambda value: str(value),
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert quantity.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0.5", 1), ("0.001", 1), ("1.0001Ki", 1025), ("0.3Ki", 308), ("0.0000000001", 1)],
    ids=["half-byte", "milli-byte", "fraction-of-Ki", "307.2-bytes", "below-nano"],
)
def test_parse_bytes_rounds_up_like_quantity_value(text: str, expected: int) -> None:
    # resource.Quantity.Value() returns ceil(q): asking for some storage never yields less.
    assert quantity.parse_bytes(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "abc",
        "Gi",
        "1.",
        ".5Gi",
        "1.5.0Gi",
        "-1Gi",
        "+1Gi",
        " 1Gi",
        "1Gi ",
        "1Gi\n",
        "1 Gi",
        "1gi",
        "1GI",
        "1Gib",
        "1KI",
        "1e3",
        "1m",
        "1n",
        "1,5Gi",
        "\uff11Gi",
        "\u0661Gi",
    ],
    ids=repr,
)
def test_parse_bytes_refuses_what_the_crd_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a quantity") as raised:
        quantity.parse_bytes(text)

    assert str(raised.value) == (
        f"'{text}' is not a quantity: use a number with an optional unit such as 512Mi, 20Gi or 1.5Ti"
    )


@pytest.mark.parametrize("text", ["8Ei", "9223372036854775808", "9.3E", "10E", "1000000Pi"])
def test_parse_bytes_refuses_more_than_kubernetes_can_hold(text: str) -> None:
    with pytest.raises(ValueError, match=f"^'{text}' is too large"):
        quantity.parse_bytes(text)


@pytest.mark.parametrize(
    ("n_bytes", "expected"),
    [(0, 0), (1, 0), (2**20 - 1, 0), (2**20, 1), (2**20 + 1, 1), (1610612736, 1536), (2**63 - 1, 2**43 - 1)],
)
def test_to_mib_rounds_down(n_bytes: int, expected: int) -> None:
    assert quantity.to_mib(n_bytes) == expected
