"""The bureau writes Simplified Chinese: no Traditional character in anything the project ships.

Every run of Chinese characters in every tracked text file (code, examples, schemas, docs, the
campaign file, tests) is converted with OpenCC's Traditional-to-Simplified table; a run that
changes holds a Traditional character, and the test names the file, the line and the fix.
"""

from __future__ import annotations

import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path

import opencc
import pytest

from contracts.reminders import reminder_id
from services.common.campaign import load_campaign
from services.common.lifecycle import Issue
from services.reminders.domain.firing import issue_reminder
from services.reminders.domain.model import Timer

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]+")
# Characters OpenCC's table maps although mainland usage keeps them in these words.
KEPT = {"著"}


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [ROOT / name.decode() for name in listed if name]


def traditional_runs(text: str, converter: opencc.OpenCC) -> list[tuple[int, str, str]]:
    """(line, run, its Simplified form) for each run of Han characters that is not Simplified."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        for match in HAN.finditer(line):
            run = match.group()
            simplified = converter.convert(run)
            if simplified != run and any(
                a != b and a not in KEPT for a, b in zip(run, simplified, strict=False)
            ):
                found.append((number, run, simplified))
    return found


def test_the_check_sees_traditional_characters() -> None:
    converter = opencc.OpenCC("t2s")
    # The Traditional sample is spelled in escapes so that this file passes its own check.
    traditional = "\u9023\u96f2\u5340\u4e2d\u4e91\u81fa\u8def105\u865f"  # the mixed address
    assert traditional_runs("连云区\n" + traditional, converter) == [
        (2, traditional[:7], "连云区中云台路"),
        (2, traditional[-1], "号"),
    ]
    assert traditional_runs("已销号 创卫复审 回头看 反复反弹 交办单", converter) == []


def test_every_tracked_file_is_simplified_chinese() -> None:
    converter = opencc.OpenCC("t2s")
    problems = []
    for path in _tracked_text_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        problems += [
            f"{path.relative_to(ROOT)}:{line}: {run} -> {simplified}"
            for line, run, simplified in traditional_runs(text, converter)
        ]
    assert not problems, "Traditional Chinese in shipped text:\n" + "\n".join(problems)


def test_the_campaigns_names_and_the_texts_made_from_them_are_simplified_chinese() -> None:
    # The campaign file is a tracked file (above), but a deployment writes its own: its titles
    # reach every reminder, report and cw venue, so they are checked as loaded, and in the texts.
    converter = opencc.OpenCC("t2s")
    campaign = load_campaign()
    names = campaign.names
    contacts = [c.name for c in (campaign.reminders.deputy_head, campaign.reminders.head) if c]
    words = [
        campaign.name, *(p.title for p in campaign.phases), *(d.name for d in names.districts),
        *(i.title for i in names.checklist), *(i.category for i in names.checklist), *contacts,
    ]  # fmt: skip
    assert len(names.checklist) >= 19 and len(names.districts) == 6
    at = datetime(2023, 3, 12, 8, 30, tzinfo=campaign.timezone)
    for item in names.checklist:
        issue = Issue(
            district="320703", issue_id="I1", venue_id="LY-FM-001", phase="re_review",
            item_code=item.code, category=None, severity=item.severity, description=None,
            found_at=at - timedelta(days=9), due_at=at - timedelta(days=2), order_no="ZG-1",
        )  # fmt: skip
        timer = Timer(reminder_id("320703", "overdue", issue_id="I1", deadline=issue.due_at),
                      "320703", "overdue", 0, at, "pending", "I1", issue.due_at)  # fmt: skip
        r = issue_reminder(timer, issue, None, rules=campaign.reminders, tz=campaign.timezone,
                           issued_at=at, names=names)  # fmt: skip
        assert item.title in r.body_zh
        words += [r.title_zh, r.body_zh]
    found = [(w, run, simple) for w in words for _, run, simple in traditional_runs(w, converter)]
    assert found == []
