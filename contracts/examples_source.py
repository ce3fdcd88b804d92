"""The example campaign in ``contracts/examples/events.jsonl``, written out as a story.

Lianyun District (320703) commerce bureau, 创卫复审 2023, following the seed plan: ten venues
register, check themselves in February (动员自查), are supervised and looked back on from March to
May (复审迎检, with the state re-review in May), and stay under routine supervision from June
(长效管理). Every id is a uuid5 of a stable name and every timestamp is written out, so the file is
byte-for-byte the same on every run and a publisher can diff against it.

The story deliberately contains each case a reader must handle:

- a deadline extended by a second ``RectificationDue`` (金海岸超市, MALL-AED);
- a ``RecheckFailed`` followed by a ``RecheckPassed`` (猴嘴惠民购物广场, MALL-PH);
- an issue closed after its deadline (中云百汇超市, MALL-PSA);
- a rebound: 墟沟农贸市场 FM-3F is closed on 2023-03-22 and found again on 2023-06-13;
- an issue still open past its deadline at the end of the file (猴嘴农贸市场, FM-3F);
- events without ``phase`` (from the market-supervision system, 板桥农贸市场), whose phase a reader
  derives from ``occurred_at`` by the campaign calendar.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from contracts.reminders import reminder_id

DISTRICT = "320703"
EXAMPLES_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://chuangwei.example/lianyun-2023")

BUREAU_APP = "ly-inspection-app"
"""The bureau's inspection app: registrations, supervision, look-backs, orders."""
MARKET_SUPERVISION = "ly-market-supervision"
"""The market-supervision system; it does not know the campaign calendar and sends no phase."""
STATE_TEAM = "国家卫生城市复审组"

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
    "张伟": "0518-82310101",
    "李娜": "0518-82310102",
    "刘洋": "0518-82310103",
    "陈静": "0518-82310104",
}


MALL, MARKET = "mall_supermarket", "farmers_market"

# venue_id, name, kind, street (街道), address, first responsible person, officer
_VENUE_ROWS = (
    ("LY-MALL-001", "墟沟海滨购物中心", MALL, "墟沟街道", "连云区海棠北路88号", "周志强", "张伟"),
    ("LY-MALL-002", "金海岸超市连岛店", MALL, "连岛街道", "连云区海滨大道16号", "吴丽华", "张伟"),
    ("LY-MALL-003", "猴嘴惠民购物广场", MALL, "猴嘴街道", "连云区猴嘴东路26号", "郑国栋", "李娜"),
    ("LY-MALL-004", "中云百汇超市", MALL, "中云街道", "连云区中云台路105号", "孙晓梅", "李娜"),
    ("LY-FM-001", "墟沟农贸市场", MARKET, "墟沟街道", "连云区中山中路203号", "王建国", "刘洋"),
    ("LY-FM-002", "连云新城农贸市场", MARKET, "连云街道", "连云区港城大道7号", "赵德胜", "刘洋"),
    ("LY-FM-003", "猴嘴农贸市场", MARKET, "猴嘴街道", "连云区盐坨路12号", "钱玉兰", "陈静"),
    ("LY-FM-004", "板桥农贸市场", MARKET, "板桥街道", "连云区富强路3号", "马文斌", "陈静"),
    ("LY-FM-005", "宿城农贸市场", MARKET, "宿城街道", "连云区留云路9号", "胡海燕", "张伟"),
    ("LY-FM-006", "朝阳农贸市场", MARKET, "朝阳街道", "连云区朝阳中路66号", "黄立新", "李娜"),
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


SELF_FIXED = "自查发现后已整改到位，拍照留存备查。"
ORDER_REASON = "督查发现问题，按《问题整改交办单》限期整改。"


def _registration(c: ExampleCampaign) -> None:
    for i, venue in enumerate(VENUES):
        c.register(venue, _t("02-03", f"09:{i * 5:02d}"))


def _haibin(c: ExampleCampaign, v: Venue = HAIBIN) -> None:
    ins = c.inspect(v, _t("02-14", "10:00"), "self_check", 1)
    aed = c.issue(
        v, _t("02-14", "10:20"), "MALL-AED", "minor", "AED未按月自检，缺少检查记录。", found_in=ins
    )
    c.recheck(v, _t("02-21", "15:00"), aed, None, "已补建AED月检记录并张贴于设备旁。")

    ins = c.inspect(v, _t("03-08", "09:30"), "supervision", 2)
    psa = c.issue(
        v,
        _t("03-08", "09:50"),
        "MALL-PSA",
        "major",
        "一楼总服务台及各楼层服务台未张贴创卫宣传海报，外墙无创卫公益广告。",
        photos=3,
        found_in=ins,
    )
    tob = c.issue(
        v,
        _t("03-08", "10:05"),
        "MALL-TOB",
        "minor",
        "三楼消防通道发现烟头，未配备控烟劝阻员。",
        found_in=ins,
    )
    c.order(v, _t("03-09", "09:00"), psa, "2023-03-24", ORDER_REASON)
    c.order(v, _t("03-09", "09:05"), tob, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-23", "14:00"), "look_back")
    c.recheck(v, _t("03-23", "14:20"), psa, ins, "各服务台已张贴宣传海报，外墙公益广告已上刊。")
    c.recheck(v, _t("03-23", "14:25"), tob, ins, "已设控烟劝阻员两名，消防通道已清理。")

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
        "未配置AED，急救箱内药品已过期。",
        found_in=ins,
    )
    he = c.issue(
        v, _t("03-09", "14:30"), "MALL-HE", "minor", "健康教育宣传栏内容未按月更新。", found_in=ins
    )
    c.order(v, _t("03-10", "09:00"), aed, "2023-03-31", ORDER_REASON)
    c.order(v, _t("03-10", "09:05"), he, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-24", "10:00"), "look_back")
    c.recheck(v, _t("03-24", "10:15"), he, ins, "宣传栏已更新为三月份内容。")
    c.order(
        v,
        _t("03-30", "11:00"),
        aed,
        "2023-04-20",
        "AED设备采购需履行招标程序，企业申请延期至4月20日，急救箱已先行补齐。",
    )
    ins = c.inspect(v, _t("04-19", "10:00"), "look_back")
    c.recheck(v, _t("04-19", "10:20"), aed, ins, "AED已安装于一楼服务台旁，员工已完成使用培训。")

    c.inspect(v, _t("06-14", "10:00"), "supervision")


def _huimin(c: ExampleCampaign, v: Venue = HUIMIN) -> None:
    ins = c.inspect(v, _t("02-16", "09:30"), "self_check", 1)
    tob = c.issue(
        v, _t("02-16", "09:45"), "MALL-TOB", "minor", "室内禁烟标识数量不足。", found_in=ins
    )
    c.recheck(v, _t("02-23", "16:00"), tob, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-14", "09:30"), "supervision", 1)
    ph = c.issue(
        v,
        _t("03-14", "09:50"),
        "MALL-PH",
        "major",
        "部分从业人员健康证过期，卫生许可证未公示。",
        found_in=ins,
    )
    c.order(v, _t("03-15", "09:00"), ph, "2023-03-29", ORDER_REASON)
    ins = c.inspect(v, _t("03-29", "10:00"), "look_back", 1)
    c.recheck(
        v,
        _t("03-29", "10:20"),
        ph,
        ins,
        "卫生许可证已公示，仍有2名员工健康证未办理。",
        passed=False,
    )
    c.order(v, _t("03-30", "09:00"), ph, "2023-04-10", "回头看未通过，重新限期整改。")
    ins = c.inspect(v, _t("04-10", "15:00"), "look_back")
    c.recheck(v, _t("04-10", "15:10"), ph, ins, "全部从业人员已持有效健康证上岗。")

    c.inspect(v, _t("05-17", "10:00"), "re_review", inspector=STATE_TEAM)
    ins = c.inspect(v, _t("08-09", "10:00"), "supervision", 1)
    psa = c.issue(
        v, _t("08-09", "10:15"), "MALL-PSA", "minor", "诚信经营公益广告少于两处。", found_in=ins
    )
    c.order(v, _t("08-09", "16:00"), psa, "2023-08-24", ORDER_REASON)
    ins = c.inspect(v, _t("08-23", "09:30"), "look_back")
    c.recheck(v, _t("08-23", "09:40"), psa, ins, "已增设「图说我们的价值观」及诚信经营广告各一处。")


def _baihui(c: ExampleCampaign, v: Venue = BAIHUI) -> None:
    c.inspect(v, _t("02-17", "10:00"), "self_check")

    ins = c.inspect(v, _t("03-15", "14:00"), "supervision", 1)
    psa = c.issue(
        v,
        _t("03-15", "14:20"),
        "MALL-PSA",
        "major",
        "外墙及入口处无创卫宣传标语，广告位未刊播「图说我们的价值观」公益广告。",
        photos=2,
        found_in=ins,
    )
    c.order(v, _t("03-16", "09:00"), psa, "2023-03-31", ORDER_REASON)
    # No look-back by the deadline; the fix is confirmed twelve days late.
    ins = c.inspect(v, _t("04-12", "10:00"), "look_back")
    c.recheck(v, _t("04-12", "10:15"), psa, ins, "逾期后整改到位，宣传标语及公益广告已上墙。")

    c.inspect(v, _t("07-19", "10:00"), "supervision")


def _xugou(c: ExampleCampaign, v: Venue = XUGOU) -> None:
    ins = c.inspect(v, _t("02-13", "08:30"), "self_check", 2)
    pub = c.issue(
        v,
        _t("02-13", "08:45"),
        "FM-PUB",
        "minor",
        "入口公示栏未公示当日农药残留检测结果。",
        found_in=ins,
    )
    waste = c.issue(
        v, _t("02-13", "08:50"), "FM-WASTE", "minor", "市场内垃圾桶未加盖。", found_in=ins
    )
    c.recheck(v, _t("02-20", "09:00"), pub, None, SELF_FIXED)
    c.recheck(v, _t("02-20", "09:05"), waste, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-07", "09:00"), "supervision", 3)
    three_f = c.issue(
        v,
        _t("03-07", "09:20"),
        "FM-3F",
        "major",
        "排水沟防鼠网孔径过大，大门门缝超过0.6厘米，熟食区未设防蝇设施。",
        photos=3,
        found_in=ins,
    )
    zone = c.issue(
        v,
        _t("03-07", "09:35"),
        "FM-ZONE",
        "major",
        "水产区与蔬菜区混杂，未做到划行归市。",
        found_in=ins,
    )
    cert = c.issue(
        v,
        _t("03-07", "09:50"),
        "FM-CERT",
        "minor",
        "熟食摊位从业人员未持健康证，未穿工作服。",
        found_in=ins,
    )
    for minute, issue_id in enumerate((three_f, zone, cert)):
        c.order(v, _t("03-08", f"09:0{minute}"), issue_id, "2023-03-22", ORDER_REASON)
    ins = c.inspect(v, _t("03-22", "14:00"), "look_back")
    c.recheck(
        v, _t("03-22", "14:10"), three_f, ins, "已更换防鼠网，门缝加装挡鼠板，熟食区加装纱罩。"
    )
    c.recheck(v, _t("03-22", "14:15"), zone, ins, "水产区已迁至东侧独立区域。")
    c.recheck(v, _t("03-22", "14:20"), cert, ins, "熟食摊位人员已办理健康证并统一着装。")

    c.inspect(v, _t("05-18", "09:00"), "re_review", inspector=STATE_TEAM)

    # 83 days after FM-3F was closed: a rebound (反复反弹), ordered for priority supervision.
    ins = c.inspect(v, _t("06-13", "09:30"), "supervision", 1)
    again = c.issue(
        v,
        _t("06-13", "09:45"),
        "FM-3F",
        "major",
        "防蝇门帘损坏，熟食直接暴露，市场内未设灭鼠毒饵站。",
        photos=2,
        found_in=ins,
    )
    c.order(v, _t("06-14", "09:00"), again, "2023-06-28", "反复反弹问题，列入重点督办。")
    ins = c.inspect(v, _t("06-28", "10:00"), "look_back")
    c.recheck(v, _t("06-28", "10:10"), again, ins, "已更换门帘，增设毒饵站12个并建立巡查台账。")

    ins = c.inspect(v, _t("09-12", "09:00"), "supervision", 1)
    wc = c.issue(
        v, _t("09-12", "09:20"), "FM-WC", "minor", "公厕异味明显，洗手设施损坏。", found_in=ins
    )
    c.order(v, _t("09-13", "09:00"), wc, "2023-09-27", ORDER_REASON)
    ins = c.inspect(v, _t("09-26", "15:00"), "look_back")
    c.recheck(v, _t("09-26", "15:10"), wc, ins, "已维修洗手设施，安排专人每日保洁。")


def _xincheng(c: ExampleCampaign, v: Venue = XINCHENG) -> None:
    ins = c.inspect(v, _t("02-14", "14:00"), "self_check", 1)
    vec = c.issue(
        v,
        _t("02-14", "14:10"),
        "FM-VEC",
        "minor",
        "病媒生物防制无专人负责，无消杀记录。",
        found_in=ins,
    )
    c.recheck(v, _t("02-22", "10:00"), vec, None, "已指定专人负责并建立消杀台账。")

    ins = c.inspect(v, _t("03-10", "09:00"), "supervision", 2)
    poul = c.issue(
        v,
        _t("03-10", "09:20"),
        "FM-POUL",
        "critical",
        "活禽宰杀未与销售区隔离，未落实休市消毒制度。",
        photos=2,
        found_in=ins,
    )
    stall = c.issue(
        v,
        _t("03-10", "09:40"),
        "FM-STALL",
        "minor",
        "部分摊位未配置垃圾桶，存在店外经营。",
        found_in=ins,
    )
    c.order(v, _t("03-11", "09:00"), poul, "2023-04-10", ORDER_REASON)
    c.order(v, _t("03-11", "09:05"), stall, "2023-03-25", ORDER_REASON)
    ins = c.inspect(v, _t("03-24", "10:00"), "look_back")
    c.recheck(v, _t("03-24", "10:10"), stall, ins, "已为每个摊位配置垃圾桶，店外经营已清理。")
    ins = c.inspect(v, _t("04-07", "10:00"), "look_back")
    c.recheck(v, _t("04-07", "10:15"), poul, ins, "活禽宰杀间已封闭隔离，每周三休市消毒。")

    ins = c.inspect(v, _t("05-18", "14:00"), "re_review", 1, inspector=STATE_TEAM)
    drain = c.issue(
        v, _t("05-18", "14:20"), "FM-STALL", "minor", "水产区无排水设施，地面积水。", found_in=ins
    )
    c.order(v, _t("05-19", "09:00"), drain, "2023-05-26", "国家复审组现场反馈问题，立行立改。")
    ins = c.inspect(v, _t("05-25", "10:00"), "look_back")
    c.recheck(v, _t("05-25", "10:10"), drain, ins, "水产区已铺设排水沟并加装篦子。")

    c.inspect(v, _t("07-05", "09:30"), "supervision")


def _houzui(c: ExampleCampaign, v: Venue = HOUZUI) -> None:
    c.inspect(v, _t("02-15", "14:00"), "self_check")

    ins = c.inspect(v, _t("03-16", "09:00"), "supervision", 2)
    pub = c.issue(
        v,
        _t("03-16", "09:15"),
        "FM-PUB",
        "minor",
        "健康教育宣传栏未按月更新，入口无禁烟标识。",
        found_in=ins,
    )
    waste = c.issue(
        v,
        _t("03-16", "09:30"),
        "FM-WASTE",
        "major",
        "垃圾收集点未每日清运，渗滤液外溢。",
        found_in=ins,
    )
    c.order(v, _t("03-17", "09:00"), pub, "2023-03-31", ORDER_REASON)
    c.order(v, _t("03-17", "09:05"), waste, "2023-03-24", ORDER_REASON)
    ins = c.inspect(v, _t("03-23", "15:00"), "look_back")
    c.recheck(v, _t("03-23", "15:10"), waste, ins, "已与环卫所签订日清协议，收集点已冲洗消毒。")
    ins = c.inspect(v, _t("03-30", "15:00"), "look_back")
    c.recheck(v, _t("03-30", "15:10"), pub, ins, "宣传栏已更新，入口张贴禁烟标识。")

    ins = c.inspect(v, _t("08-16", "09:00"), "supervision", 1)
    three_f = c.issue(
        v,
        _t("08-16", "09:20"),
        "FM-3F",
        "major",
        "冷鲜肉摊位防蝇罩缺失，下水道口无防鼠网。",
        found_in=ins,
    )
    # Ordered with a deadline of 08-31 and never rechecked: open past its deadline.
    c.order(v, _t("08-17", "09:00"), three_f, "2023-08-31", ORDER_REASON)


def _banqiao(c: ExampleCampaign, v: Venue = BANQIAO) -> None:
    ins = c.inspect(v, _t("02-16", "14:00"), "self_check", 1)
    cert = c.issue(
        v, _t("02-16", "14:10"), "FM-CERT", "minor", "部分经营户未亮照经营。", found_in=ins
    )
    c.recheck(v, _t("02-24", "09:00"), cert, None, SELF_FIXED)

    ins = c.inspect(v, _t("03-21", "09:00"), "supervision", 1)
    zone = c.issue(
        v, _t("03-21", "09:20"), "FM-ZONE", "major", "熟食与生鲜混合摆放。", found_in=ins
    )
    c.order(v, _t("03-22", "09:00"), zone, "2023-04-05", ORDER_REASON)
    ins = c.inspect(v, _t("04-04", "10:00"), "look_back")
    c.recheck(v, _t("04-04", "10:10"), zone, ins, "熟食区已单独设置并加装隔断。")

    # The market-supervision system reports its own visit; it sends no phase.
    with c.reported_by(MARKET_SUPERVISION, with_phase=False):
        ins = c.inspect(v, _t("06-20", "10:00"), "supervision", 1, inspector="连云区市场监管局")
        cert = c.issue(
            v,
            _t("06-20", "10:10"),
            "FM-CERT",
            "minor",
            "两名熟食经营人员健康证过期。",
            found_in=ins,
        )
        c.order(v, _t("06-21", "09:00"), cert, "2023-07-05", ORDER_REASON)
        c.recheck(v, _t("07-04", "10:00"), cert, None, "已补办健康证。")


def _sucheng(c: ExampleCampaign, v: Venue = SUCHENG) -> None:
    c.inspect(v, _t("02-17", "14:00"), "self_check")

    ins = c.inspect(v, _t("03-22", "09:30"), "supervision", 2)
    wc = c.issue(
        v, _t("03-22", "09:45"), "FM-WC", "major", "公厕蹲位损坏，无专人保洁。", found_in=ins
    )
    three_f = c.issue(v, _t("03-22", "09:55"), "FM-3F", "minor", "蔬菜区无防蝇设施。", found_in=ins)
    c.order(v, _t("03-23", "09:00"), wc, "2023-04-07", ORDER_REASON)
    c.order(v, _t("03-23", "09:05"), three_f, "2023-04-07", ORDER_REASON)
    ins = c.inspect(v, _t("04-06", "14:00"), "look_back")
    c.recheck(v, _t("04-06", "14:10"), wc, ins, "公厕已维修并安排专人保洁。")
    c.recheck(v, _t("04-06", "14:15"), three_f, ins, "蔬菜区已加装灭蝇灯和纱罩。")

    ins = c.inspect(v, _t("09-20", "09:30"), "supervision", 1)
    stall = c.issue(
        v, _t("09-20", "09:45"), "FM-STALL", "minor", "水产摊位污水外溢，地面湿滑。", found_in=ins
    )
    # Still open at the end of the file, but not yet due.
    c.order(v, _t("09-21", "09:00"), stall, "2023-10-10", ORDER_REASON)


def _chaoyang(c: ExampleCampaign, v: Venue = CHAOYANG) -> None:
    ins = c.inspect(v, _t("02-20", "09:00"), "self_check", 1)
    poul = c.issue(
        v, _t("02-20", "09:15"), "FM-POUL", "major", "活禽区未落实每周休市消毒。", found_in=ins
    )
    c.recheck(v, _t("02-27", "09:00"), poul, None, "已建立每周三休市消毒制度并记录。")

    ins = c.inspect(v, _t("04-11", "09:00"), "supervision", 1)
    vec = c.issue(
        v, _t("04-11", "09:15"), "FM-VEC", "minor", "消杀记录不全，缺3月下旬记录。", found_in=ins
    )
    c.order(v, _t("04-12", "09:00"), vec, "2023-04-26", ORDER_REASON)
    ins = c.inspect(v, _t("04-25", "10:00"), "look_back")
    c.recheck(v, _t("04-25", "10:10"), vec, ins, "消杀台账已补全，由专人每周记录。")

    c.inspect(v, _t("05-19", "09:00"), "re_review", inspector=STATE_TEAM)

    ins = c.inspect(v, _t("07-26", "09:00"), "supervision", 1)
    pub = c.issue(
        v,
        _t("07-26", "09:15"),
        "FM-PUB",
        "minor",
        "公示栏未公示市场平面分区图及卫生管理制度。",
        found_in=ins,
    )
    c.order(v, _t("07-27", "09:00"), pub, "2023-08-10", ORDER_REASON)
    ins = c.inspect(v, _t("08-09", "10:00"), "look_back", 1)
    c.recheck(v, _t("08-09", "10:10"), pub, ins, "平面分区图仍未上墙。", passed=False)
    # Closed after the deadline of 08-10, without a new order.
    ins = c.inspect(v, _t("08-16", "10:00"), "look_back")
    c.recheck(v, _t("08-16", "10:10"), pub, ins, "平面分区图及卫生管理制度已公示。")


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


def example_reminders() -> list[dict[str, Any]]:
    """Two reminders the example campaign leads to, as the reminders service publishes them.

    猴嘴农贸市场's FM-3F issue (ISS-2023-0023) was ordered fixed by 2023-08-31 17:30 and never
    rechecked: at its deadline an ``overdue`` reminder goes to the first responsible person and
    the officer, and the next morning's digest counts it.
    """
    houzui = next(v for v in VENUES if v.venue_id == "LY-FM-003")
    due = datetime.fromisoformat("2023-08-31T17:30:00+08:00")
    overdue = {
        "schema_version": 1,
        "reminder_id": str(
            reminder_id(DISTRICT, "overdue", issue_id="ISS-2023-0023", deadline=due)
        ),
        "kind": "overdue",
        "level": 0,
        "district": DISTRICT,
        "venue_id": houzui.venue_id,
        "venue_name": houzui.name,
        "issue_id": "ISS-2023-0023",
        "item_code": "FM-3F",
        "severity": "major",
        "phase": "long_term",
        "order_no": "LY-ZG-2023-020",
        "due_at": "2023-08-31T17:30:00+08:00",
        "fire_at": "2023-08-31T17:30:00+08:00",
        "issued_at": "2023-08-31T17:30:01+08:00",
        "recipients": [
            {"role": "first_responsible", "name": houzui.boss, "phone": houzui.boss_phone},
            {"role": "officer", "name": houzui.officer, "phone": houzui.officer_phone},
        ],
        "title_zh": f"整改逾期：{houzui.name} FM-3F",
        "body_zh": f"{houzui.name}（{houzui.street}）的问题 FM-3F“冷鲜肉摊位防蝇罩缺失，"
        "下水道口无防鼠网”，交办单 LY-ZG-2023-020 的整改期限 2023-08-31 17:30 已到，"
        f"尚未复查销号。请第一责任人{houzui.boss}立即整改，责任科室{houzui.officer}安排复查。",
        "title_en": f"Overdue: {houzui.venue_id} FM-3F",
        "body_en": f"Issue ISS-2023-0023 (FM-3F) at {houzui.venue_id} passed its deadline "
        "2023-08-31 17:30 (Asia/Shanghai) under order LY-ZG-2023-020 and is not closed.",
    }
    digest_day = date(2023, 9, 1)
    digest = {
        "schema_version": 1,
        "reminder_id": str(reminder_id(DISTRICT, "digest", local_date=digest_day)),
        "kind": "digest",
        "level": 0,
        "district": DISTRICT,
        "venue_id": None,
        "venue_name": None,
        "issue_id": None,
        "item_code": None,
        "severity": None,
        "phase": None,
        "order_no": None,
        "due_at": None,
        "fire_at": "2023-09-01T08:30:00+08:00",
        "issued_at": "2023-09-01T08:30:00+08:00",
        "recipients": [
            {"role": "officer", "name": name, "phone": phone} for name, phone in OFFICERS.items()
        ],
        "title_zh": "连云区创卫问题日报（2023-09-01）",
        "body_zh": "未销号问题 1 个，今日到期 0 个，逾期 1 个，反弹 0 个。\n"
        f"逾期最久：{houzui.name} FM-3F，逾期 1 天，第一责任人{houzui.boss}"
        f"（{houzui.boss_phone}），责任科室{houzui.officer}。",
        "title_en": "Lianyun daily digest (2023-09-01)",
        "body_en": "Open 1, due today 0, overdue 1, rebounds 0. Most overdue: "
        f"{houzui.venue_id} FM-3F, 1 day.",
    }
    return [overdue, digest]
