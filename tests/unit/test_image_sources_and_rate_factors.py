"""Two guards of the OWASP suite's features, without processes: disk images only from the allowed sources (a disk's
`image` becomes a CDI import the cluster fetches, so an arbitrary URL is a server-side request forgery), and one
tenant's rate limits raised by the operator for a fuzzing run."""

from __future__ import annotations

import pytest

from server import errors
from server.auth import Caller
from server.auth.limits import MAX_STREAMS_PER_USER, RATES, RateLimits
from server.config import Settings, SettingsError
from server.metrics import Metrics
from server.tally import Tally
from server.wukongs import validation

SOURCES = frozenset({"docker://quay.io/", "https://images.example.com/"})
CREATE = "/novasphere.v1.WukongService/CreateWukong"


def _spec(*images: str) -> dict[str, object]:
    return {"disks": [{"name": f"d{n}", "image": image} for n, image in enumerate(images)]}


def test_images_from_an_allowed_source_pass_and_an_empty_image_needs_none() -> None:
    spec = _spec("docker://quay.io/containerdisks/ubuntu:22.04", "https://images.example.com/fedora.qcow2", "")
    assert validation.check_image_sources(spec, "wukong.spec", SOURCES, kept=frozenset()) == []


@pytest.mark.parametrize(
    "image",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://127.0.0.1:9464/metrics",
        "https://images.example.com.attacker.net/x.img",
        "https://user@images.example.net/x.img",
        "docker://quay.io.attacker.net/x",
        "file:///etc/passwd",
        "HTTPS://images.example.com/x.img",
    ],
)
def test_any_other_source_is_refused_naming_the_field_and_what_is_allowed(image: str) -> None:
    [violation] = validation.check_image_sources(_spec("", image), "wukong.spec", SOURCES, kept=frozenset())
    assert violation.field == "wukong.spec.disks[1].image"
    assert violation.description == (
        f"'{image}' is not from an allowed image source; images must start with one of: "
        "docker://quay.io/, https://images.example.com/"
    )


def test_an_update_keeps_the_images_a_vm_already_has() -> None:
    old = "http://10.0.0.5/legacy.img"
    assert validation.check_image_sources(_spec(old), "wukong.spec", SOURCES, kept=frozenset({old})) == []
    assert validation.images_of(_spec(old, "")) == frozenset({old})


def test_the_default_sources_allow_the_demo_image_and_the_setting_replaces_them() -> None:
    default = Settings.from_env({}).image_sources
    assert default == frozenset(validation.DEFAULT_IMAGE_SOURCES)
    demo = _spec("docker://quay.io/containerdisks/ubuntu:22.04")
    assert validation.check_image_sources(demo, "s", default, kept=frozenset()) == []
    metadata = _spec("http://169.254.169.254/")
    assert len(validation.check_image_sources(metadata, "s", default, kept=frozenset())) == 1
    given = Settings.from_env({"NOVASPHERE_IMAGE_SOURCES": " https://images.example.com/ ,docker://quay.io/"})
    assert given.image_sources == SOURCES


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("ftp://images.example.com/", "must start with one of http://, https://, docker://, registry://"),
        ("https://images.example.com", "must name a host and end it with '/'"),
        ("docker:///x", "must name a host and end it with '/'"),
        ("https://user@images.example.com/", "must name a host and end it with '/'"),
    ],
)
def test_a_malformed_source_stops_the_server(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        Settings.from_env({"NOVASPHERE_IMAGE_SOURCES": value})


def test_rate_limit_factors_are_tenant_factor_pairs() -> None:
    assert Settings.from_env({}).rate_limit_factors == {}
    given = Settings.from_env({"NOVASPHERE_RATE_LIMIT_FACTORS": "fuzz=100, load=2.5"}).rate_limit_factors
    assert given == {"fuzz": 100.0, "load": 2.5}
    for bad in ("fuzz", "fuzz=0.5", "=10", "fuzz=2000"):
        with pytest.raises(SettingsError, match="NOVASPHERE_RATE_LIMIT_FACTORS"):
            Settings.from_env({"NOVASPHERE_RATE_LIMIT_FACTORS": bad})


def test_a_raised_tenant_gets_factor_times_the_burst_and_others_keep_theirs() -> None:
    limits = RateLimits(metrics=Metrics(), tally=Tally(kube=None, namespace="ns", replica="a"), factors={"fuzz": 10})
    fuzzer, neighbour = (Caller("f", "fuzz", frozenset()), Caller("n", "demo", frozenset()))
    burst = RATES[CREATE].burst
    for _ in range(burst * 10):
        limits.charge(fuzzer, CREATE)
    with pytest.raises(errors.RateLimited, match="at most 600 a minute per user"):
        limits.charge(fuzzer, CREATE)
    for _ in range(burst):
        limits.charge(neighbour, CREATE)
    with pytest.raises(errors.RateLimited, match="at most 60 a minute per user"):
        limits.charge(neighbour, CREATE)


def test_a_raised_tenant_may_hold_factor_times_the_streams() -> None:
    limits = RateLimits(metrics=Metrics(), tally=Tally(kube=None, namespace="ns", replica="a"), factors={"fuzz": 2})
    fuzzer = Caller("f", "fuzz", frozenset())
    held = [limits.stream(fuzzer) for _ in range(MAX_STREAMS_PER_USER * 2)]
    for slot in held:
        slot.__enter__()
    with pytest.raises(errors.RateLimited, match=f"at most {MAX_STREAMS_PER_USER * 2} per user"), limits.stream(fuzzer):
        pass
    for slot in held:
        slot.__exit__(None, None, None)


def test_labels_under_a_reserved_domain_are_refused_unless_the_wukong_has_them() -> None:
    labels = {"app": "db", "novasphere.dev/tenant": "other", "x.kubevirt.io/y": "z", "kubevirtXio/a": "b"}
    assert [v.field for v in validation.check_reserved_labels(labels, "wukong.labels", kept={})] == [
        "wukong.labels[novasphere.dev/tenant]",
        "wukong.labels[x.kubevirt.io/y]",
    ]
    kept = {"novasphere.dev/tenant": "other", "x.kubevirt.io/y": "z"}
    assert validation.check_reserved_labels(labels, "wukong.labels", kept=kept) == []
