"""The example campaign in ``contracts/examples/events.jsonl``, written out as a story.

Lianyun District (320703) commerce bureau, 創衛復審 2023, following the seed plan: ten venues
register, check themselves in February (動員自查), are supervised and looked back on from March to
May (復審迎檢, with the state re-review in May), and stay under routine supervision from June
(長效管理). Every id is a uuid5 of a stable name and every timestamp is written out, so the file is
byte-for-byte the same on every run and a publisher can diff against it.

The story deliberately contains each case a reader must handle:

- a deadline extended by a second ``RectificationDue`` (金海岸超市, MALL-AED);
- a ``RecheckFailed`` followed by a ``RecheckPassed`` (猴嘴惠民購物廣場, MALL-PH);
- an issue closed after its deadline (中云百匯超市, MALL-PSA);
- a rebound: 墟溝農貿市場 FM-3F is closed on 2023-03-22 and found again on 2023-06-13;
- an issue still open past its deadline at the end of the file (猴嘴農貿市場, FM-3F);
- events without ``phase`` (from the market-supervision system, 板橋農貿市場), whose phase a reader
  derives from ``occurred_at`` by the campaign calendar.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

DISTRICT = "320703"
EXAMPLES_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://chuangwei.example/lianyun-2023")

BUREAU_APP = "ly-inspection-app"
"""The bureau's inspection app: registrations, supervision, look-backs, orders."""
MARKET_SUPERVISION = "ly-market-supervision"
"""The market-supervision system; it does not know the campaign calendar and sends no phase."""
STATE_TEAM = "國家衛生城市復審組"

# The seed plan's calendar; the services read the same dates from their campaign TOML.
_PHASES = (
    (date(2023, 2, 1), "self_check"),
    (date(2023, 3, 1), "re_review"),
    (date(2023, 6, 1), "long_term"),
)


def phase_on(moment: datetime) -> str:
    day = moment.date()
    current = _PHASES[0][1]
    for start, name in _PHASES:
        if day >= start:
            current = name
    return current


@dataclass(frozen=True, slots=True)
class Venue:
    venue_id: str
    name: str
    kind: str
    street: str
    address: str
    boss: str
    boss_phone: str
    officer: str
    officer_phone: str

    @property
    def items(self) -> int:
        """How many catalog items apply: 9 for a farmers' market, 5 for a mall or supermarket."""
        return 9 if self.kind == "farmers_market" else 5


OFFICERS = {
    "張偉": "0518-82310101",
    "李娜": "0518-82310102",
    "劉洋": "0518-82310103",
    "陳靜": "0518-82310104",
}


MALL, MARKET = "mall_supermarket", "farmers_market"

# venue_id, name, kind, street (街道), address, first responsible person, officer
_VENUE_ROWS = (
    ("LY-MALL-001", "墟溝海濱購物中心", MALL, "墟溝街道", "連雲區海棠北路88號", "周志強", "張偉"),
    ("LY-MALL-002", "金海岸超市連島店", MALL, "連島街道", "連雲區海濱大道16號", "吳麗華", "張偉"),
    ("LY-MALL-003", "猴嘴惠民購物廣場", MALL, "猴嘴街道", "連雲區猴嘴東路26號", "鄭國棟", "李娜"),
    ("LY-MALL-004", "中云百匯超市", MALL, "中云街道", "連雲區中云臺路105號", "孫曉梅", "李娜"),
    ("LY-FM-001", "墟溝農貿市場", MARKET, "墟溝街道", "連雲區中山中路203號", "王建國", "劉洋"),
    ("LY-FM-002", "連雲新城農貿市場", MARKET, "連雲街道", "連雲區港城大道7號", "趙德勝", "劉洋"),
    ("LY-FM-003", "猴嘴農貿市場", MARKET, "猴嘴街道", "連雲區鹽坨路12號", "錢玉蘭", "陳靜"),
    ("LY-FM-004", "板橋農貿市場", MARKET, "板橋街道", "連雲區富強路3號", "馬文斌", "陳靜"),
    ("LY-FM-005", "宿城農貿市場", MARKET, "宿城街道", "連雲區留雲路9號", "胡海燕", "張偉"),
    ("LY-FM-006", "朝陽農貿市場", MARKET, "朝陽街道", "連雲區朝陽中路66號", "黃立新", "李娜"),
)
VENUES = tuple(
    # Phone numbers are made up: 13800000001, 13800000002, ...
    Venue(vid, name, kind, street, address, boss, f"138{n:08d}", officer, OFFICERS[officer])
    for n, (vid, name, kind, street, address, boss, officer) in enumerate(_VENUE_ROWS, start=1)
)
HAIBIN, JINHAIAN, HUIMIN, BAIHUI, XUGOU, XINCHENG, HOUZUI, BANQIAO, SUCHENG, CHAOYANG = VENUES


@dataclass
class ExampleCampaign:
    """Writes events in the order the story tells them; ``events()`` sorts them by time."""

    source: str = BUREAU_APP
    with_phase: bool = True
    events_: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)
    _counters: dict[str, int] = field(default_factory=dict)

    @contextmanager
    def reported_by(self, source: str, *, with_phase: bool) -> Iterator[None]:
        """Events emitted inside come from another system."""
        saved = self.source, self.with_phase
        self.source, self.with_phase = source, with_phase
        try:
            yield
        finally:
            self.source, self.with_phase = saved

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def emit(
        self,
        event_type: str,
        venue: Venue,
        at: str,
        data: dict[str, Any],
    ) -> None:
        n = self._next("event")
        occurred = datetime.fromisoformat(at)
        event: dict[str, Any] = {
            "event_id": str(uuid.uuid5(EXAMPLES_NAMESPACE, f"event:{n:04d}")),
            "event_type": event_type,
            "schema_version": 1,
            "occurred_at": at,
            "source": self.source,
            "district": DISTRICT,
            "venue_id": venue.venue_id,
        }
        if self.with_phase:
            event["phase"] = phase_on(occurred)
        event["data"] = {k: v for k, v in data.items() if v is not None}
        self.events_.append((at, n, event))

    def register(self, venue: Venue, at: str) -> None:
        self.emit(
            "VenueRegistered",
            venue,
            at,
            {
                "name": venue.name,
                "kind": venue.kind,
                "street": venue.street,
                "address": venue.address,
                "first_responsible": {"name": venue.boss, "phone": venue.boss_phone},
                "officer": {"name": venue.officer, "phone": venue.officer_phone},
            },
        )

    def inspect(
        self,
        venue: Venue,
        at: str,
        kind: str,
        failed: int = 0,
        *,
        inspector: str | None = None,
        checked: int | None = None,
    ) -> str:
        inspection_id = f"INS-2023-{self._next('inspection'):04d}"
        if inspector is None:
            inspector = venue.boss if kind == "self_check" else venue.officer
        self.emit(
            "InspectionRecorded",
            venue,
            at,
            {
                "inspection_id": inspection_id,
                "kind": kind,
                "inspector": inspector,
                "items_checked": venue.items if checked is None else checked,
                "items_failed": failed,
            },
        )
        return inspection_id

    def issue(
        self,
        venue: Venue,
        at: str,
        item_code: str,
        severity: str,
        description: str,
        *,
        found_in: str,
        photos: int = 1,
    ) -> str:
        issue_id = f"ISS-2023-{self._next('issue'):04d}"
        day = at[:10].replace("-", "")
        self.emit(
            "IssueFound",
            venue,
            at,
            {
                "issue_id": issue_id,
                "inspection_id": found_in,
                "item_code": item_code,
                "category": item_code.split("-", 1)[0],
                "severity": severity,
                "description": description,
                "evidence": [f"IMG-{day}-{issue_id[-4:]}-{i}.jpg" for i in range(1, photos + 1)],
            },
        )
        return issue_id

    def order(
        self,
        venue: Venue,
        at: str,
        issue_id: str,
        due: str,
        reason: str | None = None,
    ) -> None:
        self.emit(
            "RectificationDue",
            venue,
            at,
            {
                "issue_id": issue_id,
                "order_no": f"LY-ZG-2023-{self._next('order'):03d}",
                "due_at": f"{due}T17:30:00+08:00",
                "assignee": venue.boss,
                "reason": reason,
            },
        )

    def recheck(
        self,
        venue: Venue,
        at: str,
        issue_id: str,
        inspection_id: str | None,
        note: str,
        *,
        passed: bool = True,
    ) -> None:
        self.emit(
            "RecheckPassed" if passed else "RecheckFailed",
            venue,
            at,
            {"issue_id": issue_id, "inspection_id": inspection_id, "note": note},
        )

    def events(self) -> list[dict[str, Any]]:
        return [event for _, _, event in sorted(self.events_, key=lambda e: (e[0], e[1]))]


def _t(day: str, clock: str) -> str:
    return f"2023-{day}T{clock}:00+08:00"


SELF_FIXED = "自查發現後已整改到位，拍照留存備查。"
ORDER_REASON = "督查發現問題，按《問題整改交辦單》限期整改。"


def _registration(c: ExampleCampaign) -> None:
    for i, venue in enumerate(VENUES):
        c.register(venue, _t("02-03", f"09:{i * 5:02d}"))


def _haibin(c: ExampleCampaign, v: Venue = HAIBIN) -> None:
    ins = c.inspect(v, _t("02-14", "10:00"), "self_check", 1)
    aed = c.issue(
        v, _t("02-14", "10:20"), "MALL-AED", "minor", "AED未按月自檢，缺少檢查記錄。", found_in=ins
    )
    c.recheck(v, _t("02-21", "15:00"), aed, None, "已補建AED月檢記錄並張貼於設備旁。")

    ins = c.inspect(v, _t("03-08", "09:30"), "supervision", 2)
    psa = c.issue(
        v,
        _t("03-08", "09:50"),
        "MALL-PSA",
        "major",
        "一樓總服務台及各樓層服務台未張貼創衛宣傳海報，外牆無創衛公益廣告。",
        photos=3,
        found_in=ins,
    )
    tob = c.issue(
        v,
        _t("03-08", "10:05"),
        "MALL-TOB",
        "minor",
        "三樓消防通道發現煙頭，未配備控煙勸阻員。",
        found_in=ins,
    )
    c.order(v, _t("03-09", "09:00"), psa, "2023-03-24", ORDER_REASON)
    c.order(v, _t("03-09", "09:05"), tob, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-23", "14:00"), "look_back")
    c.recheck(v, _t("03-23", "14:20"), psa, ins, "各服務台已張貼宣傳海報，外牆公益廣告已上刊。")
    c.recheck(v, _t("03-23", "14:25"), tob, ins, "已設控煙勸阻員兩名，消防通道已清理。")

    c.inspect(v, _t("05-16", "10:00"), "re_review", inspector=STATE_TEAM)
    c.inspect(v, _t("07-12", "15:00"), "supervision")


def _jinhaian(c: ExampleCampaign, v: Venue = JINHAIAN) -> None:
    c.inspect(v, _t("02-15", "09:00"), "self_check")

    ins = c.inspect(v, _t("03-09", "14:00"), "supervision", 2)
    aed = c.issue(
        v,
        _t("03-09", "14:20"),
        "MALL-AED",
        "critical",
        "未配置AED，急救箱內藥品已過期。",
        found_in=ins,
    )
    he = c.issue(
        v, _t("03-09", "14:30"), "MALL-HE", "minor", "健康教育宣傳欄內容未按月更新。", found_in=ins
    )
    c.order(v, _t("03-10", "09:00"), aed, "2023-03-31", ORDER_REASON)
    c.order(v, _t("03-10", "09:05"), he, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-24", "10:00"), "look_back")
    c.recheck(v, _t("03-24", "10:15"), he, ins, "宣傳欄已更新為三月份內容。")
    c.order(
        v,
        _t("03-30", "11:00"),
        aed,
        "2023-04-20",
        "AED設備採購需履行招標程序，企業申請延期至4月20日，急救箱已先行補齊。",
    )
    ins = c.inspect(v, _t("04-19", "10:00"), "look_back")
    c.recheck(v, _t("04-19", "10:20"), aed, ins, "AED已安裝於一樓服務台旁，員工已完成使用培訓。")

    c.inspect(v, _t("06-14", "10:00"), "supervision")


def _huimin(c: ExampleCampaign, v: Venue = HUIMIN) -> None:
    ins = c.inspect(v, _t("02-16", "09:30"), "self_check", 1)
    tob = c.issue(
        v, _t("02-16", "09:45"), "MALL-TOB", "minor", "室內禁煙標識數量不足。", found_in=ins
    )
    c.recheck(v, _t("02-23", "16:00"), tob, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-14", "09:30"), "supervision", 1)
    ph = c.issue(
        v,
        _t("03-14", "09:50"),
        "MALL-PH",
        "major",
        "部分從業人員健康證過期，衛生許可證未公示。",
        found_in=ins,
    )
    c.order(v, _t("03-15", "09:00"), ph, "2023-03-29", ORDER_REASON)
    ins = c.inspect(v, _t("03-29", "10:00"), "look_back", 1)
    c.recheck(
        v,
        _t("03-29", "10:20"),
        ph,
        ins,
        "衛生許可證已公示，仍有2名員工健康證未辦理。",
        passed=False,
    )
    c.order(v, _t("03-30", "09:00"), ph, "2023-04-10", "回頭看未通過，重新限期整改。")
    ins = c.inspect(v, _t("04-10", "15:00"), "look_back")
    c.recheck(v, _t("04-10", "15:10"), ph, ins, "全部從業人員已持有效健康證上崗。")

    c.inspect(v, _t("05-17", "10:00"), "re_review", inspector=STATE_TEAM)
    ins = c.inspect(v, _t("08-09", "10:00"), "supervision", 1)
    psa = c.issue(
        v, _t("08-09", "10:15"), "MALL-PSA", "minor", "誠信經營公益廣告少於兩處。", found_in=ins
    )
    c.order(v, _t("08-09", "16:00"), psa, "2023-08-24", ORDER_REASON)
    ins = c.inspect(v, _t("08-23", "09:30"), "look_back")
    c.recheck(v, _t("08-23", "09:40"), psa, ins, "已增設「圖說我們的價值觀」及誠信經營廣告各一處。")


def _baihui(c: ExampleCampaign, v: Venue = BAIHUI) -> None:
    c.inspect(v, _t("02-17", "10:00"), "self_check")

    ins = c.inspect(v, _t("03-15", "14:00"), "supervision", 1)
    psa = c.issue(
        v,
        _t("03-15", "14:20"),
        "MALL-PSA",
        "major",
        "外牆及入口處無創衛宣傳標語，廣告位未刊播「圖說我們的價值觀」公益廣告。",
        photos=2,
        found_in=ins,
    )
    c.order(v, _t("03-16", "09:00"), psa, "2023-03-31", ORDER_REASON)
    # No look-back by the deadline; the fix is confirmed twelve days late.
    ins = c.inspect(v, _t("04-12", "10:00"), "look_back")
    c.recheck(v, _t("04-12", "10:15"), psa, ins, "逾期後整改到位，宣傳標語及公益廣告已上牆。")

    c.inspect(v, _t("07-19", "10:00"), "supervision")


def _xugou(c: ExampleCampaign, v: Venue = XUGOU) -> None:
    ins = c.inspect(v, _t("02-13", "08:30"), "self_check", 2)
    pub = c.issue(
        v,
        _t("02-13", "08:45"),
        "FM-PUB",
        "minor",
        "入口公示欄未公示當日農藥殘留檢測結果。",
        found_in=ins,
    )
    waste = c.issue(
        v, _t("02-13", "08:50"), "FM-WASTE", "minor", "市場內垃圾桶未加蓋。", found_in=ins
    )
    c.recheck(v, _t("02-20", "09:00"), pub, None, SELF_FIXED)
    c.recheck(v, _t("02-20", "09:05"), waste, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-07", "09:00"), "supervision", 3)
    three_f = c.issue(
        v,
        _t("03-07", "09:20"),
        "FM-3F",
        "major",
        "排水溝防鼠網孔徑過大，大門門縫超過0.6厘米，熟食區未設防蠅設施。",
        photos=3,
        found_in=ins,
    )
    zone = c.issue(
        v,
        _t("03-07", "09:35"),
        "FM-ZONE",
        "major",
        "水產區與蔬菜區混雜，未做到劃行歸市。",
        found_in=ins,
    )
    cert = c.issue(
        v,
        _t("03-07", "09:50"),
        "FM-CERT",
        "minor",
        "熟食攤位從業人員未持健康證，未穿工作服。",
        found_in=ins,
    )
    for minute, issue_id in enumerate((three_f, zone, cert)):
        c.order(v, _t("03-08", f"09:0{minute}"), issue_id, "2023-03-22", ORDER_REASON)
    ins = c.inspect(v, _t("03-22", "14:00"), "look_back")
    c.recheck(
        v, _t("03-22", "14:10"), three_f, ins, "已更換防鼠網，門縫加裝擋鼠板，熟食區加裝紗罩。"
    )
    c.recheck(v, _t("03-22", "14:15"), zone, ins, "水產區已遷至東側獨立區域。")
    c.recheck(v, _t("03-22", "14:20"), cert, ins, "熟食攤位人員已辦理健康證並統一著裝。")

    c.inspect(v, _t("05-18", "09:00"), "re_review", inspector=STATE_TEAM)

    # 83 days after FM-3F was closed: a rebound (反復反彈), ordered for priority supervision.
    ins = c.inspect(v, _t("06-13", "09:30"), "supervision", 1)
    again = c.issue(
        v,
        _t("06-13", "09:45"),
        "FM-3F",
        "major",
        "防蠅門簾損壞，熟食直接暴露，市場內未設滅鼠毒餌站。",
        photos=2,
        found_in=ins,
    )
    c.order(v, _t("06-14", "09:00"), again, "2023-06-28", "反復反彈問題，列入重點督辦。")
    ins = c.inspect(v, _t("06-28", "10:00"), "look_back")
    c.recheck(v, _t("06-28", "10:10"), again, ins, "已更換門簾，增設毒餌站12個並建立巡查台賬。")

    ins = c.inspect(v, _t("09-12", "09:00"), "supervision", 1)
    wc = c.issue(
        v, _t("09-12", "09:20"), "FM-WC", "minor", "公廁異味明顯，洗手設施損壞。", found_in=ins
    )
    c.order(v, _t("09-13", "09:00"), wc, "2023-09-27", ORDER_REASON)
    ins = c.inspect(v, _t("09-26", "15:00"), "look_back")
    c.recheck(v, _t("09-26", "15:10"), wc, ins, "已維修洗手設施，安排專人每日保潔。")


def _xincheng(c: ExampleCampaign, v: Venue = XINCHENG) -> None:
    ins = c.inspect(v, _t("02-14", "14:00"), "self_check", 1)
    vec = c.issue(
        v,
        _t("02-14", "14:10"),
        "FM-VEC",
        "minor",
        "病媒生物防制無專人負責，無消殺記錄。",
        found_in=ins,
    )
    c.recheck(v, _t("02-22", "10:00"), vec, None, "已指定專人負責並建立消殺台賬。")

    ins = c.inspect(v, _t("03-10", "09:00"), "supervision", 2)
    poul = c.issue(
        v,
        _t("03-10", "09:20"),
        "FM-POUL",
        "critical",
        "活禽宰殺未與銷售區隔離，未落實休市消毒制度。",
        photos=2,
        found_in=ins,
    )
    stall = c.issue(
        v,
        _t("03-10", "09:40"),
        "FM-STALL",
        "minor",
        "部分攤位未配置垃圾桶，存在店外經營。",
        found_in=ins,
    )
    c.order(v, _t("03-11", "09:00"), poul, "2023-04-10", ORDER_REASON)
    c.order(v, _t("03-11", "09:05"), stall, "2023-03-25", ORDER_REASON)
    ins = c.inspect(v, _t("03-24", "10:00"), "look_back")
    c.recheck(v, _t("03-24", "10:10"), stall, ins, "已為每個攤位配置垃圾桶，店外經營已清理。")
    ins = c.inspect(v, _t("04-07", "10:00"), "look_back")
    c.recheck(v, _t("04-07", "10:15"), poul, ins, "活禽宰殺間已封閉隔離，每周三休市消毒。")

    ins = c.inspect(v, _t("05-18", "14:00"), "re_review", 1, inspector=STATE_TEAM)
    drain = c.issue(
        v, _t("05-18", "14:20"), "FM-STALL", "minor", "水產區無排水設施，地面積水。", found_in=ins
    )
    c.order(v, _t("05-19", "09:00"), drain, "2023-05-26", "國家復審組現場反饋問題，立行立改。")
    ins = c.inspect(v, _t("05-25", "10:00"), "look_back")
    c.recheck(v, _t("05-25", "10:10"), drain, ins, "水產區已鋪設排水溝並加裝篦子。")

    c.inspect(v, _t("07-05", "09:30"), "supervision")


def _houzui(c: ExampleCampaign, v: Venue = HOUZUI) -> None:
    c.inspect(v, _t("02-15", "14:00"), "self_check")

    ins = c.inspect(v, _t("03-16", "09:00"), "supervision", 2)
    pub = c.issue(
        v,
        _t("03-16", "09:15"),
        "FM-PUB",
        "minor",
        "健康教育宣傳欄未按月更新，入口無禁煙標識。",
        found_in=ins,
    )
    waste = c.issue(
        v,
        _t("03-16", "09:30"),
        "FM-WASTE",
        "major",
        "垃圾收集點未每日清運，滲濾液外溢。",
        found_in=ins,
    )
    c.order(v, _t("03-17", "09:00"), pub, "2023-03-31", ORDER_REASON)
    c.order(v, _t("03-17", "09:05"), waste, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-23", "15:00"), "look_back")
    c.recheck(v, _t("03-23", "15:10"), waste, ins, "已與環衛所簽訂日清協議，收集點已沖洗消毒。")
    ins = c.inspect(v, _t("03-30", "15:00"), "look_back")
    c.recheck(v, _t("03-30", "15:10"), pub, ins, "宣傳欄已更新，入口張貼禁煙標識。")

    ins = c.inspect(v, _t("08-16", "09:00"), "supervision", 1)
    three_f = c.issue(
        v,
        _t("08-16", "09:20"),
        "FM-3F",
        "major",
        "冷鮮肉攤位防蠅罩缺失，下水道口無防鼠網。",
        found_in=ins,
    )
    # Ordered with a deadline of 08-31 and never rechecked: open past its deadline.
    c.order(v, _t("08-17", "09:00"), three_f, "2023-08-31", ORDER_REASON)


def _banqiao(c: ExampleCampaign, v: Venue = BANQIAO) -> None:
    ins = c.inspect(v, _t("02-16", "14:00"), "self_check", 1)
    cert = c.issue(
        v, _t("02-16", "14:10"), "FM-CERT", "minor", "部分經營戶未亮照經營。", found_in=ins
    )
    c.recheck(v, _t("02-24", "09:00"), cert, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-21", "09:00"), "supervision", 1)
    zone = c.issue(
        v, _t("03-21", "09:20"), "FM-ZONE", "major", "熟食與生鮮混合擺放。", found_in=ins
    )
    c.order(v, _t("03-22", "09:00"), zone, "2023-04-05", ORDER_REASON)
    ins = c.inspect(v, _t("04-04", "10:00"), "look_back")
    c.recheck(v, _t("04-04", "10:10"), zone, ins, "熟食區已單獨設置並加裝隔斷。")

    # The market-supervision system reports its own visit; it sends no phase.
    with c.reported_by(MARKET_SUPERVISION, with_phase=False):
        ins = c.inspect(v, _t("06-20", "10:00"), "supervision", 1, inspector="連雲區市場監管局")
        cert = c.issue(
            v,
            _t("06-20", "10:10"),
            "FM-CERT",
            "minor",
            "兩名熟食經營人員健康證過期。",
            found_in=ins,
        )
        c.order(v, _t("06-21", "09:00"), cert, "2023-07-05", ORDER_REASON)
        c.recheck(v, _t("07-04", "10:00"), cert, None, "已補辦健康證。")


def _sucheng(c: ExampleCampaign, v: Venue = SUCHENG) -> None:
    c.inspect(v, _t("02-17", "14:00"), "self_check")

    ins = c.inspect(v, _t("03-22", "09:30"), "supervision", 2)
    wc = c.issue(
        v, _t("03-22", "09:45"), "FM-WC", "major", "公廁蹲位損壞，無專人保潔。", found_in=ins
    )
    three_f = c.issue(v, _t("03-22", "09:55"), "FM-3F", "minor", "蔬菜區無防蠅設施。", found_in=ins)
    c.order(v, _t("03-23", "09:00"), wc, "2023-04-07", ORDER_REASON)
    c.order(v, _t("03-23", "09:05"), three_f, "2023-04-07", ORDER_REASON)
    ins = c.inspect(v, _t("04-06", "14:00"), "look_back")
    c.recheck(v, _t("04-06", "14:10"), wc, ins, "公廁已維修並安排專人保潔。")
    c.recheck(v, _t("04-06", "14:15"), three_f, ins, "蔬菜區已加裝滅蠅燈和紗罩。")

    ins = c.inspect(v, _t("09-20", "09:30"), "supervision", 1)
    stall = c.issue(
        v, _t("09-20", "09:45"), "FM-STALL", "minor", "水產攤位污水外溢，地面濕滑。", found_in=ins
    )
    # Still open at the end of the file, but not yet due.
    c.order(v, _t("09-21", "09:00"), stall, "2023-10-10", ORDER_REASON)


def _chaoyang(c: ExampleCampaign, v: Venue = CHAOYANG) -> None:
    ins = c.inspect(v, _t("02-20", "09:00"), "self_check", 1)
    poul = c.issue(
        v, _t("02-20", "09:15"), "FM-POUL", "major", "活禽區未落實每周休市消毒。", found_in=ins
    )
    c.recheck(v, _t("02-27", "09:00"), poul, None, "已建立每周三休市消毒制度並記錄。")

    ins = c.inspect(v, _t("04-11", "09:00"), "supervision", 1)
    vec = c.issue(
        v, _t("04-11", "09:15"), "FM-VEC", "minor", "消殺記錄不全，缺3月下旬記錄。", found_in=ins
    )
    c.order(v, _t("04-12", "09:00"), vec, "2023-04-26", ORDER_REASON)
    ins = c.inspect(v, _t("04-25", "10:00"), "look_back")
    c.recheck(v, _t("04-25", "10:10"), vec, ins, "消殺台賬已補全，由專人每周記錄。")

    c.inspect(v, _t("05-19", "09:00"), "re_review", inspector=STATE_TEAM)

    ins = c.inspect(v, _t("07-26", "09:00"), "supervision", 1)
    pub = c.issue(
        v,
        _t("07-26", "09:15"),
        "FM-PUB",
        "minor",
        "公示欄未公示市場平面分區圖及衛生管理制度。",
        found_in=ins,
    )
    c.order(v, _t("07-27", "09:00"), pub, "2023-08-10", ORDER_REASON)
    ins = c.inspect(v, _t("08-09", "10:00"), "look_back", 1)
    c.recheck(v, _t("08-09", "10:10"), pub, ins, "平面分區圖仍未上牆。", passed=False)
    # Closed after the deadline of 08-10, without a new order.
    ins = c.inspect(v, _t("08-16", "10:00"), "look_back")
    c.recheck(v, _t("08-16", "10:10"), pub, ins, "平面分區圖及衛生管理制度已公示。")


def example_events() -> list[dict[str, Any]]:
    """The example campaign as JSON objects, in the order they happened."""
    c = ExampleCampaign()
    _registration(c)
    for story in (
        _haibin,
        _jinhaian,
        _huimin,
        _baihui,
        _xugou,
        _xincheng,
        _houzui,
        _banqiao,
        _sucheng,
        _chaoyang,
    ):
        story(c)
    return c.events()
