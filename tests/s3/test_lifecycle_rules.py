"""Lifecycle configuration documents: parsing, S3's checks and answers, rendering back
(src/egide/s3/lifecycle.py), and the rule model and its JSON form (src/egide/engine/lifecycle.py).
"""

from __future__ import annotations

import calendar

import pytest

from egide.engine.lifecyclerules import (
    LifecycleFilter,
    LifecycleRule,
    due,
    dumps_rules,
    loads_rules,
)
from egide.s3 import errors
from egide.s3.lifecycle import parse_configuration, render_configuration

MIDNIGHT = float(calendar.timegm((2017, 9, 27, 0, 0, 0)))


def doc(*rules: str) -> bytes:
    inner = "".join(f"<Rule>{rule}</Rule>" for rule in rules)
    return (
        '<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        f"{inner}</LifecycleConfiguration>"
    ).encode()


def rule(
    body: str, *, status: str = "Enabled", where: str = "<Filter/>", rule_id: str = "r"
) -> str:
    return f"<ID>{rule_id}</ID>{where}<Status>{status}</Status>{body}"


DAYS = "<Expiration><Days>1</Days></Expiration>"


def code_of(body: bytes) -> tuple[str, int]:
    with pytest.raises(errors.S3Error) as exc:
        parse_configuration(body)
    return exc.value.code, exc.value.status


def test_every_form_parses_and_renders_back() -> None:
    body = doc(
        rule(DAYS, where="<Prefix>logs/</Prefix>", rule_id="legacy"),
        rule(
            "<Expiration><Date>2017-09-27T00:00:00Z</Date></Expiration>",
            where="<Filter><Prefix></Prefix></Filter>",
            rule_id="date",
        ),
        rule(
            "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
            "<NoncurrentVersionExpiration><NoncurrentDays>3</NoncurrentDays>"
            "<NewerNoncurrentVersions>5</NewerNoncurrentVersions></NoncurrentVersionExpiration>",
            rule_id="markers",
        ),
        rule(DAYS, where="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>", rule_id="t"),
        rule(
            DAYS,
            where="<Filter><And><Prefix>a/</Prefix><Tag><Key>k</Key><Value>v</Value></Tag>"
            "<Tag><Key>x</Key><Value></Value></Tag><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
            "<ObjectSizeLessThan>100</ObjectSizeLessThan></And></Filter>",
            rule_id="and",
        ),
        rule(
            DAYS, where="<Filter><ObjectSizeLessThan>5</ObjectSizeLessThan></Filter>", rule_id="lt"
        ),
        rule(
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
            "</AbortIncompleteMultipartUpload>",
            status="Disabled",
            where="<Prefix>up/</Prefix>",
            rule_id="uploads",
        ),
    )
    rules = parse_configuration(body)
    assert rules == (
        LifecycleRule("legacy", True, LifecycleFilter(prefix="logs/"), True, expiration_days=1),
        LifecycleRule("date", True, LifecycleFilter(prefix=""), expiration_date=MIDNIGHT),
        LifecycleRule(
            "markers",
            True,
            LifecycleFilter(),
            expired_object_delete_marker=True,
            noncurrent_days=3,
            newer_noncurrent_versions=5,
        ),
        LifecycleRule("t", True, LifecycleFilter(tags=(("k", "v"),)), expiration_days=1),
        LifecycleRule(
            "and",
            True,
            LifecycleFilter("a/", (("k", "v"), ("x", "")), 10, 100, conjunction=True),
            expiration_days=1,
        ),
        LifecycleRule("lt", True, LifecycleFilter(size_less_than=5), expiration_days=1),
        LifecycleRule("uploads", False, LifecycleFilter(prefix="up/"), True, abort_upload_days=2),
    )
    rendered = render_configuration(rules)
    assert b"<Date>2017-09-27T00:00:00.000Z</Date>" in rendered
    assert b"<Prefix>logs/</Prefix><Status>" in rendered  # the legacy form stays legacy
    assert parse_configuration(rendered) == rules
    assert loads_rules(dumps_rules(rules)) == rules


def test_a_date_alone_and_a_missing_id() -> None:
    (parsed,) = parse_configuration(
        doc("<Filter/><Status>Enabled</Status><Expiration><Date>2017-09-27</Date></Expiration>")
    )
    assert parsed.expiration_date == MIDNIGHT
    assert parsed.id  # S3 names the rule itself
    again = parse_configuration(render_configuration((parsed,)))
    assert again == (parsed,)


@pytest.mark.parametrize(
    "body",
    [
        b"<LifecycleConfiguration/>",
        b"<Other><Rule/></Other>",
        b"<LifecycleConfiguration><Rule>",
        doc(*[rule(DAYS, rule_id=f"r{i}") for i in range(1001)]),
        doc(rule(DAYS, status="enabled")),
        doc(rule(DAYS, status="")),
        doc("<ID>r</ID><Filter/>" + DAYS),  # no Status
        doc(rule(DAYS, where="")),  # neither Prefix nor Filter
        doc(rule(DAYS, where="<Prefix>a</Prefix><Filter/>")),
        doc(
            rule(
                DAYS,
                where="<Filter><Prefix>a</Prefix><ObjectSizeLessThan>4</ObjectSizeLessThan></Filter>",
            )
        ),
        doc(
            rule(
                DAYS,
                where="<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
            )
        ),
        doc(rule(DAYS, where="<Filter><And></And></Filter>")),
        doc(rule(DAYS, where="<Filter><Tag><Key>k</Key></Tag></Filter>")),
        doc(rule(DAYS, where="<Filter><Unknown/></Filter>")),
        doc(rule("<Expiration></Expiration>")),
        doc(rule("<Expiration><Days>1</Days><Date>2017-09-27T00:00:00Z</Date></Expiration>")),
        doc(
            rule(
                "<Expiration><Days>1</Days>"
                "<ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>"
            )
        ),
        doc(
            rule(
                "<Expiration><ExpiredObjectDeleteMarker>yes</ExpiredObjectDeleteMarker></Expiration>"
            )
        ),
        doc(rule("<Expiration><Days>one</Days></Expiration>")),
        doc(rule("<Expiration><Date>20200101</Date></Expiration>")),
        doc(rule(DAYS + DAYS)),
        doc(rule("<NoncurrentVersionExpiration></NoncurrentVersionExpiration>")),
        doc(rule("<AbortIncompleteMultipartUpload/>")),
        doc(rule(DAYS + "<Unknown/>")),
        doc(rule("<Transition><Days>1</Days><StorageClass>COLD</StorageClass></Transition>")),
    ],
)
def test_off_the_schema_is_malformed_xml(body: bytes) -> None:
    assert code_of(body) == ("MalformedXML", 400)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (doc(rule(DAYS, rule_id="a" * 256)), "InvalidArgument"),
        (doc(rule(DAYS, rule_id="same"), rule(DAYS, rule_id="same")), "InvalidArgument"),
        (doc(rule("<Expiration><Days>0</Days></Expiration>")), "InvalidArgument"),
        (doc(rule("<Expiration><Days>-3</Days></Expiration>")), "InvalidArgument"),
        # boto3 sends "20200101" as the epoch second 20200101: 1970-08-23T19:15:01Z.
        (
            doc(rule("<Expiration><Date>1970-08-23T19:15:01Z</Date></Expiration>")),
            "InvalidArgument",
        ),
        (
            doc(rule("<Expiration><Date>2017-09-27T00:00:00+02:00</Date></Expiration>")),
            "InvalidArgument",
        ),
        (
            doc(
                rule(
                    "<NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>"
                )
            ),
            "InvalidArgument",
        ),
        (
            doc(
                rule(
                    "<NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays>"
                    "<NewerNoncurrentVersions>101</NewerNoncurrentVersions>"
                    "</NoncurrentVersionExpiration>"
                )
            ),
            "InvalidArgument",
        ),
        (
            doc(
                rule(
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation>"
                    "</AbortIncompleteMultipartUpload>"
                )
            ),
            "InvalidArgument",
        ),
        (
            doc(
                rule(
                    DAYS, where="<Filter><ObjectSizeGreaterThan>-1</ObjectSizeGreaterThan></Filter>"
                )
            ),
            "InvalidArgument",
        ),
        (
            doc(
                rule(
                    DAYS,
                    where="<Filter><And><ObjectSizeGreaterThan>9</ObjectSizeGreaterThan>"
                    "<ObjectSizeLessThan>9</ObjectSizeLessThan></And></Filter>",
                )
            ),
            "InvalidArgument",
        ),
        (doc(rule("")), "InvalidRequest"),
        (
            doc(
                rule(
                    DAYS,
                    where="<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag>"
                    "<Tag><Key>k</Key><Value>2</Value></Tag></And></Filter>",
                )
            ),
            "InvalidRequest",
        ),
        (
            doc(
                rule(
                    "<Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>",
                    where="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                )
            ),
            "InvalidRequest",
        ),
        (
            doc(
                rule(
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
                    "</AbortIncompleteMultipartUpload>",
                    where="<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter>",
                )
            ),
            "InvalidRequest",
        ),
        (
            doc(rule(DAYS, where="<Filter><Tag><Key>aws:x</Key><Value>v</Value></Tag></Filter>")),
            "InvalidTag",
        ),
    ],
)
def test_values_s3_refuses(body: bytes, code: str) -> None:
    assert code_of(body) == (code, 400)


def test_a_schema_error_anywhere_comes_before_a_value_error() -> None:
    body = doc(rule(DAYS, rule_id="a" * 256), rule(DAYS, status="enabled", rule_id="b"))
    assert code_of(body) == ("MalformedXML", 400)


def test_transitions_are_checked_then_refused_with_501() -> None:
    transition = "<Transition><Days>30</Days><StorageClass>GLACIER</StorageClass></Transition>"
    assert code_of(doc(rule(transition))) == ("NotImplemented", 501)
    noncurrent = (
        "<NoncurrentVersionTransition><NoncurrentDays>30</NoncurrentDays>"
        "<StorageClass>STANDARD_IA</StorageClass></NoncurrentVersionTransition>"
    )
    assert code_of(doc(rule(DAYS + noncurrent))) == ("NotImplemented", 501)
    # A broken transition gets S3's 400 first (s3-tests: test_lifecycle_transition_set_invalid_date)
    bad_date = (
        "<Transition><Date>1970-08-23T19:15:01Z</Date><StorageClass>GLACIER</StorageClass>"
        "</Transition>"
    )
    assert code_of(doc(rule(bad_date))) == ("InvalidArgument", 400)


def test_filter_matching() -> None:
    shape = LifecycleFilter("a/", (("k", "v"),), 10, 100, conjunction=True)
    assert shape.matches("a/x", 50, {"k": "v", "other": "1"})
    assert not shape.matches("b/x", 50, {"k": "v"})
    assert not shape.matches("a/x", 50, {"k": "w"})
    assert not shape.matches("a/x", 10, {"k": "v"})
    assert not shape.matches("a/x", 100, {"k": "v"})
    assert LifecycleFilter().matches("anything", 0, {})


def test_days_are_rounded_up_to_the_next_midnight() -> None:
    day = 86_400.0
    created = MIDNIGHT + 10.5 * 3600  # 10:30 UTC
    assert due(created, 1) == MIDNIGHT + 2 * day  # AWS's example: the day after next, 00:00
    assert due(MIDNIGHT, 1) == MIDNIGHT + day
    assert due(100.2, 3, day=1.0) == 104.0  # a shrunken day for tests
