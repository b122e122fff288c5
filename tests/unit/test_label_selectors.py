"""Label selectors as `kubectl -l` writes them, with apimachinery's `labels.Parse` semantics."""

from __future__ import annotations

import re

import pytest

from server.wukongs import selectors

WEB = {"app": "web", "env": "prod", "example.com/tier": "frontend"}
DB = {"app": "db", "env": "staging"}
BARE: dict[str, str] = {}
EMPTY_ENV = {"app": "web", "env": ""}


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("", ""),
        ("   ", ""),
        ("app=web", "app=web"),
        ("app==web", "app=web"),
        ("app = web", "app=web"),
        (" app  ==  web ", "app=web"),
        ("app!=web", "app!=web"),
        ("app != web", "app!=web"),
        ("app", "app"),
        ("!app", "!app"),
        ("! app", "!app"),
        ("app in (web,db)", "app in (db,web)"),
        ("app in(web, db )", "app in (db,web)"),
        ("app  notin  ( web , db )", "app notin (db,web)"),
        ("app in (web)", "app=web"),
        ("app notin (web)", "app!=web"),
        ("app in (web,web)", "app=web"),
        ("app=", "app="),
        ("app!=", "app!="),
        ("app in ()", "app="),
        ("app in (web,)", "app in (,web)"),
        ("env=prod,app=web", "app=web,env=prod"),
        ("app=web,app=web", "app=web"),
        ("tier,!legacy,app in (a,b),env!=dev", "app in (a,b),env!=dev,!legacy,tier"),
        ("!app,app", "!app,app"),
        ("example.com/tier=frontend", "example.com/tier=frontend"),
        ("a.b-c_d=e.f-g_h", "a.b-c_d=e.f-g_h"),
        ("app=in", "app=in"),
        ("app in (in,notin)", "app in (in,notin)"),
        ("\tapp=web,\nenv=prod", "app=web,env=prod"),
    ],
    ids=repr,
)
def test_parse_normalises(text: str, canonical: str) -> None:
    selector = selectors.parse(text)

    assert str(selector) == canonical
    assert selectors.parse(canonical) == selector


def test_equivalent_spellings_are_equal_and_hash_alike() -> None:
    spellings = [
        "app=web,env in (prod,staging)",
        "env in (staging, prod), app==web",
        "app in (web),env in (prod,staging)",
    ]

    parsed = {selectors.parse(text) for text in spellings}

    assert len(parsed) == 1


@pytest.mark.timeout(10)
def test_a_selector_is_bounded_in_size_and_in_requirements() -> None:
    # A client chooses the text, and each Wukong of a list or watch is tested against every requirement.
    with pytest.raises(ValueError, match="at most 4096"):
        selectors.parse(",".join(f"k{i}" for i in range(100_000)))
    with pytest.raises(ValueError, match="51 requirements; at most 50"):
        selectors.parse(",".join(f"k{i}" for i in range(51)))
    assert len(selectors.parse(",".join(f"k{i}" for i in range(50))).requirements) == 50


@pytest.mark.timeout(10)
def test_splitting_into_terms_is_linear() -> None:
    # 100000 terms split in well under a second (they took minutes with a quadratic split).
    assert len(selectors._terms(",".join(f"k{i}" for i in range(100_000)))) == 100_000


def test_empty_selector_is_everything() -> None:
    assert selectors.parse("") == selectors.EVERYTHING
    assert all(selectors.EVERYTHING.matches(labels) for labels in (WEB, DB, BARE, EMPTY_ENV))


@pytest.mark.parametrize(
    ("text", "labels", "expected"),
    [
        ("app=web", WEB, True),
        ("app=web", DB, False),
        ("app=web", BARE, False),
        ("app==web", WEB, True),
        ("app!=web", WEB, False),
        ("app!=web", DB, True),
        ("app!=web", BARE, True),  # != matches objects without the key
        ("app in (web,db)", WEB, True),
        ("app in (web,db)", DB, True),
        ("app in (web,db)", BARE, False),  # in requires the key
        ("app in (api)", WEB, False),
        ("app notin (web,api)", WEB, False),
        ("app notin (web,api)", DB, True),
        ("app notin (web,api)", BARE, True),  # notin matches objects without the key
        ("app", WEB, True),
        ("app", BARE, False),
        ("!app", WEB, False),
        ("!app", BARE, True),
        ("env=", EMPTY_ENV, True),  # the empty value is a value
        ("env=", WEB, False),
        ("env=", BARE, False),
        ("env!=", EMPTY_ENV, False),
        ("env!=", BARE, True),
        ("env", EMPTY_ENV, True),
        ("app in (web,)", EMPTY_ENV, True),
        ("env in (prod,)", EMPTY_ENV, True),
        ("env in ()", EMPTY_ENV, True),
        ("env in ()", WEB, False),
        ("app=web,env=prod", WEB, True),
        ("app=web,env=prod", DB, False),
        ("app=web,env=staging", WEB, False),  # every term must hold
        ("app=web,app=db", WEB, False),
        ("example.com/tier=frontend", WEB, True),
        ("example.com/tier", DB, False),
        ("tier=frontend", WEB, False),  # the prefix is part of the key
        ("App=web", WEB, False),  # keys and values are case-sensitive
        ("app=Web", WEB, False),
        ("!legacy,app notin (db),env", WEB, True),
        ("!legacy,app notin (db),env", DB, False),
    ],
    ids=lambda value: repr(value) if isinstance(value, str) else None,
)
def test_matches_like_kubernetes(text: str, labels: dict[str, str], expected: bool) -> None:
    assert selectors.parse(text).matches(labels) is expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("app in x", "'app in x': expected a parenthesised list of values after 'in', e.g. env in (prod,staging)"),
        (
            "app notin",
            "'app notin': expected a parenthesised list of values after 'notin', e.g. env notin (prod,staging)",
        ),
        ("app in (x", "'app in (x': expected a parenthesised list of values after 'in', e.g. env in (prod,staging)"),
        ("app in (x,y", "'app in (x,y': expected a parenthesised list of values after 'in'"),
        ("app=web,", "'app=web,': empty term; separate terms with single commas, e.g. env=prod,tier!=db"),
        (",app=web", "',app=web': empty term; separate terms with single commas, e.g. env=prod,tier!=db"),
        ("a,,b", "'a,,b': empty term; separate terms with single commas, e.g. env=prod,tier!=db"),
        ("!app in (x)", "'!app in (x)': '!' only negates a bare key, e.g. !legacy"),
        (
            "app web",
            "'app web': expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key, e.g. env=prod",
        ),
        ("app=web=x", "'app=web=x': expected key=value"),
        ("app=(web)", "'app=(web)': expected key=value"),
        ("=web", "'=web': expected key=value"),
        ("!", "'!': expected key=value"),
        ("app!", "'app!': expected key=value"),
        ("app<3", "'app<3': label key 'app<3' must be"),
        ("app>3", "'app>3': label key 'app>3' must be"),
        ("-app=web", "'-app=web': label key '-app' must be at most 63 letters"),
        ("Example.com/app=web", "'Example.com/app=web': label key 'Example.com/app': the prefix before '/' must be"),
        ("a/b/c=web", "'a/b/c=web': label key 'a/b/c': the prefix before '/' must be"),
        ("app=web-", "'app=web-': label value 'web-' must be empty or at most 63 letters"),
        ("app in (web, d b)", "'app in (web, d b)': label value 'd b' must be"),
        ("app in (web,-x)", "'app in (web,-x)': label value '-x' must be"),
        (f"app={'v' * 64}", "label value 'vvvv"),
        (f"{'k' * 64}", "label key 'kkkk"),
    ],
    ids=lambda value: repr(value)[:40],
)
def test_parse_errors_name_the_term_and_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        selectors.parse(text)


@pytest.mark.parametrize(
    "key",
    ["app", "a", "A", "9", "app.kubernetes.io", "a_b", "a-b.c_d", "k" * 63, "example.com/app", "a/b", f"{'p' * 253}/x"],
    ids=lambda key: key[:20],
)
def test_check_label_key_accepts(key: str) -> None:
    assert selectors.check_label_key(key) is None


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("", "label key '' must be at most 63 letters, digits, '-', '_' or '.', starting and ending with a letter"),
        ("k" * 64, "must be at most 63"),
        ("-app", "must be at most 63"),
        ("app-", "must be at most 63"),
        ("_app", "must be at most 63"),
        ("a pp", "must be at most 63"),
        ("app/", "must be at most 63"),
        ("é", "must be at most 63"),
        ("/app", "the prefix before '/' must be a DNS subdomain such as example.com"),
        ("Example.com/app", "the prefix before '/' must be a DNS subdomain"),
        ("example_com/app", "the prefix before '/' must be a DNS subdomain"),
        ("-example.com/app", "the prefix before '/' must be a DNS subdomain"),
        ("example..com/app", "the prefix before '/' must be a DNS subdomain"),
        (f"{'p' * 254}/x", "the prefix before '/' must be a DNS subdomain"),
        ("a/b/c", "the prefix before '/' must be a DNS subdomain"),
    ],
    ids=lambda value: repr(value)[:30],
)
def test_check_label_key_refuses(key: str, problem: str) -> None:
    description = selectors.check_label_key(key)

    assert description is not None
    assert problem in description
    assert f"label key '{key}'" in description


@pytest.mark.parametrize("value", ["", "web", "W", "1", "v1.2.3", "a_b-c.d", "v" * 63], ids=repr)
def test_check_label_value_accepts(value: str) -> None:
    assert selectors.check_label_value(value) is None


@pytest.mark.parametrize("value", ["v" * 64, "-web", "web-", ".web", "we b", "web/x", "a=b", "é", "web\n"], ids=repr)
def test_check_label_value_refuses(value: str) -> None:
    assert selectors.check_label_value(value) == (
        f"label value '{value}' must be empty or at most 63 letters, digits, '-', '_' or '.', starting and ending "
        "with a letter or digit"
    )
