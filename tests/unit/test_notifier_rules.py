"""The notifier's rules without servers: the notify file, the budget, merging, signing."""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

import pytest

from services.common.connect import mask_webhook_url
from services.common.retry import RetryPolicy
from services.notifier.adapters import dingtalk, wecom
from services.notifier.adapters.dingtalk import sign, signed_url
from services.notifier.adapters.http import Scrubber, retry_after
from services.notifier.domain.budget import Attempt, budget_for
from services.notifier.domain.messages import merged, plan, single
from services.notifier.domain.model import Pending
from services.notifier.domain.targets import NotifyFileInvalid, parse_targets
from tests.support.reminder_messages import reminder, subject, wire

pytestmark = pytest.mark.unit

T0 = datetime(2023, 4, 1, 2, 0, tzinfo=UTC)
SECRET = "SEC0123456789abcdef"
ENV = {"CW_DINGTALK_SECRET": SECRET}


def targets(*tables: Mapping[str, object]) -> list[object]:
    return list(parse_targets({"targets": list(tables)}, ENV))


DINGTALK = {
    "name": "lianyun-dingtalk",
    "kind": "dingtalk",
    "url": "https://oapi.dingtalk.com/robot/send?access_token=abcdef0123456789",
    "secret_env": "CW_DINGTALK_SECRET",
}


# The notify file


def test_a_robot_gets_the_robot_limits_and_a_webhook_none() -> None:
    (robot, hook) = parse_targets(
        {"targets": [DINGTALK, {"name": "sms", "kind": "webhook", "url": "http://gw/hook"}]}, ENV
    )
    assert (robot.per_minute, robot.window, robot.secret) == (20, timedelta(seconds=60), SECRET)
    assert robot.is_robot and not hook.is_robot
    assert hook.per_minute is None


def test_filters_by_district_and_kind() -> None:
    (t,) = parse_targets(
        {"targets": [{**DINGTALK, "districts": ["320703"], "kinds": ["overdue", "digest"]}]}, ENV
    )
    assert t.wants(reminder(1))
    assert t.wants(reminder(2, kind="digest"))
    assert not t.wants(reminder(3, kind="due_soon"))
    assert not t.wants(reminder(4, district="320705"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"colour": "red"}, r"targets\[0\] \(lianyun-dingtalk\)\.colour: unknown key"),
        ({"kind": "sms"}, r"\.kind: 'sms' is not one of dingtalk, wecom, webhook"),
        ({"url": "ftp://x"}, r"\.url: expected an http:// or https:// URL"),
        ({"per_minute": 0}, r"\.per_minute: expected a whole number from 1 to 10000"),
        ({"per_minute": "20"}, r"\.per_minute: expected a whole number"),
        ({"window": "soon"}, r"\.window: bad duration 'soon'"),
        ({"window": "0s"}, r"\.window: must be longer than 0s"),
        ({"districts": ["Lianyun"]}, r"\.districts: 'Lianyun' is not a six-digit district code"),
        ({"kinds": ["overdue", "late"]}, r"\.kinds: 'late' is not one of no_order"),
        ({"kinds": []}, r"\.kinds: expected a non-empty list of strings"),
        ({"secret_env": "CW_NOT_SET"}, r"\.secret_env: the variable CW_NOT_SET is not set"),
        ({"kind": "wecom"}, r"\.secret_env: only a DingTalk robot signs"),
        ({"url_env": "CW_DINGTALK_URL"}, r"\.url: give either url or url_env"),
        ({"secret_env": "not a name"}, r"\.secret_env: expected the name of an environment"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_target_and_field(
    change: dict[str, object], message: str
) -> None:
    with pytest.raises(NotifyFileInvalid, match=message):
        targets({**DINGTALK, **change})


def test_the_url_may_come_from_a_variable_as_its_token_is_a_secret() -> None:
    env = {**ENV, "CW_WECOM_URL": "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k1"}
    (t,) = parse_targets(
        {"targets": [{"name": "wecom", "kind": "wecom", "url_env": "CW_WECOM_URL"}]}, env
    )
    assert t.url == env["CW_WECOM_URL"]
    for value, message in (
        (None, r"targets\[0\] \(wecom\)\.url_env: the variable CW_WECOM_URL is not set"),
        ("oapi.dingtalk.com", r"\.url_env: the variable CW_WECOM_URL holds no http\(s\)://"),
    ):
        given = {**ENV, "CW_WECOM_URL": value} if value else ENV
        with pytest.raises(NotifyFileInvalid, match=message):
            parse_targets(
                {"targets": [{"name": "wecom", "kind": "wecom", "url_env": "CW_WECOM_URL"}]}, given
            )


def test_missing_fields_unknown_tables_and_twice_the_same_name_are_errors() -> None:
    with pytest.raises(NotifyFileInvalid, match=r"targets\[0\]\.name: missing"):
        targets({"kind": "webhook", "url": "http://x"})
    with pytest.raises(NotifyFileInvalid, match=r"\(sms\)\.url: missing \(or url_env"):
        targets({"name": "sms", "kind": "webhook"})
    with pytest.raises(NotifyFileInvalid, match="unknown key 'robots'"):
        parse_targets({"robots": []}, ENV)
    with pytest.raises(NotifyFileInvalid, match="the name 'lianyun-dingtalk' is used twice"):
        targets(DINGTALK, DINGTALK)


# The budget


def test_the_budget_counts_every_attempt_from_its_end_whatever_the_answer() -> None:
    budget = budget_for("wecom", 2, timedelta(seconds=60))
    done = [
        Attempt(T0, T0 + timedelta(seconds=1)),
        Attempt(T0 + timedelta(seconds=5), T0 + timedelta(seconds=9)),
    ]
    assert budget.free(done[:1], T0 + timedelta(seconds=2)) == 1
    assert budget.free(done, T0 + timedelta(seconds=10)) == 0
    assert budget.next_start(done, T0 + timedelta(seconds=10)) == T0 + timedelta(seconds=61)
    assert budget.next_start(done, T0 + timedelta(seconds=61)) == T0 + timedelta(seconds=61)
    assert budget.free(done, T0 + timedelta(seconds=61)) == 1


def test_an_attempt_cut_off_by_a_crash_counts_until_its_request_would_have_timed_out() -> None:
    budget = budget_for("dingtalk", 1, timedelta(seconds=60))
    in_flight = [Attempt(T0, None)]
    assert budget.next_start(in_flight, T0) == T0 + budget.request_timeout + budget.window


def test_a_throttled_robot_is_left_alone_for_ten_windows_dingtalk_or_one_wecom() -> None:
    window = timedelta(seconds=2)
    throttled = [Attempt(T0, T0, throttled=True)]
    assert budget_for("dingtalk", 20, window).next_start(throttled, T0) == T0 + 10 * window
    assert budget_for("wecom", 20, window).next_start(throttled, T0) == T0 + window


def test_no_limit_for_a_webhook_without_per_minute() -> None:
    budget = budget_for("webhook", None, timedelta(seconds=60))
    many = [Attempt(T0, T0)] * 1000
    assert budget.next_start(many, T0) == T0
    assert budget.free(many, T0) > 0


# Messages


def pending(n: int) -> Pending:
    r = reminder(n)
    return Pending(r, n, subject(r), wire(r))


def test_a_single_message_is_the_chinese_text_with_mentions() -> None:
    m = single(reminder(7), dingtalk.FORMAT)
    assert m.title == "整改逾期 #7：连云区测试农贸市场"
    assert m.text.startswith("#### 整改逾期 #7：连云区测试农贸市场\n\n问题 FM-3F")
    assert m.text.endswith("@13800000000 @13900000001")
    assert m.phones == ("13800000000", "13900000001")
    assert not m.merged


def test_a_long_text_is_cut_to_the_wecom_limit() -> None:
    long = "整改内容很长。" * 290  # 2030 characters, about 6 KB
    m = single(reminder(1, body_zh=long[:2000]), wecom.FORMAT)
    assert len(m.text.encode()) <= 4096
    assert "…" in m.text
    assert m.text.endswith("@13800000000 @13900000001")


def test_merging_packs_in_order_within_the_size_limit() -> None:
    rs = [reminder(n) for n in range(1, 501)]
    m = merged(rs, wecom.FORMAT)
    assert m.merged
    assert len(m.text.encode()) <= 4096
    assert m.reminder_ids == tuple(r.reminder_id for r in rs[: len(m.reminder_ids)])
    assert m.text.startswith(f"#### 创卫提醒：{len(m.reminder_ids)} 条（合并发送）")
    assert "1. 整改逾期 #1：连云区测试农贸市场 @13800000000 @13900000001" in m.text
    bigger = merged(rs, dingtalk.FORMAT)
    assert len(bigger.reminder_ids) > len(m.reminder_ids)
    assert dingtalk.FORMAT.fits(bigger)


def test_one_per_message_while_the_budget_has_room_beyond_its_reserve() -> None:
    fmt = dingtalk.FORMAT
    three = [pending(n) for n in (1, 2, 3)]
    assert not plan(three, free=20, per_minute=20, fmt=fmt).merged
    # 3 waiting fit in 13 free with 10 (half of 20) in reserve: one each
    assert plan(three, free=13, per_minute=20, fmt=fmt).reminder_ids == (three[0].reminder_id,)
    burst = plan(three, free=12, per_minute=20, fmt=fmt)  # they do not: merged
    assert burst.reminder_ids == tuple(p.reminder_id for p in three)
    assert not plan(three[:1], free=1, per_minute=20, fmt=fmt).merged


# Signing and masking


def test_dingtalk_signs_timestamp_newline_secret_with_the_secret() -> None:
    ts = 1680314400000
    expected = base64.b64encode(
        hmac.new(SECRET.encode(), f"{ts}\n{SECRET}".encode(), hashlib.sha256).digest()
    ).decode()
    signed = sign(ts, SECRET)
    assert unquote_plus(signed) == expected
    assert "+" not in signed and "/" not in signed and "=" not in signed  # URL-encoded
    url = signed_url(DINGTALK["url"], SECRET, ts)
    assert url == f"{DINGTALK['url']}&timestamp={ts}&sign={signed}"
    assert signed_url("http://robot/send?access_token=x", None, ts) == (
        "http://robot/send?access_token=x"
    )


def test_robot_and_webhook_urls_are_masked() -> None:
    assert mask_webhook_url(DINGTALK["url"]) == (
        "https://oapi.dingtalk.com/robot/send?access_token=***"
    )
    assert mask_webhook_url("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7") == (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***"
    )
    assert mask_webhook_url("https://u:p@hooks.example.com/services/T0/B0/0123456789abcdefXYZ") == (
        "https://hooks.example.com/services/T0/B0/***"
    )
    scrub = Scrubber(DINGTALK["url"], SECRET)
    text = scrub(f"Cannot connect to {DINGTALK['url']} (token abcdef0123456789, {SECRET})")
    assert "abcdef0123456789" not in text and SECRET not in text
    assert "oapi.dingtalk.com/robot/send?access_token=***" in text


def test_retry_after_in_seconds_or_as_a_date_and_the_policys_pauses() -> None:
    assert retry_after({"Retry-After": "7"}) == 7.0
    assert retry_after({"Retry-After": "Sat, 01 Apr 2023 02:00:30 GMT"}, now=T0) == 30.0
    assert retry_after({}) is None
    policy = RetryPolicy(first_s=1.0, cap_s=5.0)
    assert 1.0 <= policy.pause(1) <= 2.0
    assert 2.0 <= policy.pause(2) <= 3.0
    assert policy.pause(50) == 5.0
