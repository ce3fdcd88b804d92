"""Where the intake files a rejected line: ``cw.dlq.intake.<district>``."""

from __future__ import annotations

import pytest

from contracts.wire import dead_letter_stage, intake_dead_letter_district
from services.cli import main
from services.intake.domain.lines import Rejected, sender_district

pytestmark = pytest.mark.unit


def _rejected(payload: bytes) -> Rejected:
    return Rejected(1, "event_type", "missing", payload, len(payload))


def test_a_restricted_publisher_files_every_rejected_line_under_its_own_district() -> None:
    claims_another = _rejected(b'{"district": "110101"}')
    assert sender_district(claims_another, "320703") == "320703"
    assert sender_district(_rejected(b"not json"), "320703") == "320703"


def test_without_a_district_the_line_says_which_when_it_can_be_read() -> None:
    assert sender_district(_rejected(b'{"district": "110101"}'), None) == "110101"
    for unreadable in (b"not json", b"[1]", b'{"district": "11.01"}', b'{"district": 110101}',
                       b'{"district": "110101\\n"}'):  # fmt: skip
        assert sender_district(_rejected(unreadable), None) == "unknown"


def test_the_stage_and_district_of_a_dead_letter_subject() -> None:
    assert dead_letter_stage("cw.dlq.intake.320703") == "intake"
    assert dead_letter_stage("cw.dlq.intake") == "intake"
    assert dead_letter_stage("cw.dlq.projector") == "projector"
    assert intake_dead_letter_district("cw.dlq.intake.320703") == "320703"
    assert intake_dead_letter_district("cw.dlq.intake.unknown") is None
    assert intake_dead_letter_district("cw.dlq.intake") is None
    assert intake_dead_letter_district("cw.dlq.projector") is None


def test_a_district_setting_that_is_not_a_district_is_said_in_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CW_DISTRICT", "3207")
    assert main(["publish", "-"]) == 78
    said = capsys.readouterr()
    assert said.err.splitlines() == ["cw: CW_DISTRICT: String should match pattern '^[0-9]{6}$'"]
    assert "3207" not in said.err.replace("CW_DISTRICT", "")
