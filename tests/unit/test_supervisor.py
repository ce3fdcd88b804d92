"""``cw dev``'s supervision with fake processes: an exit is reported and restarted with a
growing pause; cancelling stops every child it started and restarts nothing."""

from __future__ import annotations

import asyncio

import pytest

from services.common.retry import RetryPolicy
from services.devstack.supervisor import (
    STEADY_S,
    Say,
    describe_exit,
    keep_running,
    restart_pause,
    supervise,
)
from tests.support.waiting import eventually

pytestmark = pytest.mark.unit


class FakeChild:
    """A process that prints its lines, then exits with the next scripted status; once the
    script runs out it keeps running until stopped."""

    def __init__(self, name: str, exits: list[int], lines: list[str] | None = None) -> None:
        self.name = name
        self.exits = list(exits)
        self.lines = lines or []
        self.starts = 0
        self.stops = 0
        self._alive = False
        self._stopped = asyncio.Event()

    def start(self) -> int:
        self.starts += 1
        self._alive = True
        self._stopped.clear()
        return 1000 + self.starts

    async def finished(self, say: Say) -> int:
        for line in self.lines:
            say(f"{self.name} | {line}")
        if self.exits:
            self._alive = False
            return self.exits.pop(0)
        await self._stopped.wait()
        self._alive = False
        return -2  # SIGINT

    def tail(self) -> list[str]:
        return list(self.lines)

    def running(self) -> bool:
        return self._alive

    async def stop(self) -> None:
        self.stops += 1
        self._stopped.set()


class Pauses:
    """A sleep that records the pauses and returns at once."""

    def __init__(self) -> None:
        self.taken: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)
        await asyncio.sleep(0)


POLICY = RetryPolicy(first_s=0.2, cap_s=1.0)


def test_exit_descriptions() -> None:
    assert describe_exit(3) == "exited with status 3"
    assert describe_exit(-9) == "was killed by SIGKILL"


def test_pauses_double_up_to_the_cap_with_jitter() -> None:
    for failures, low in [(1, 0.2), (2, 0.4), (3, 0.8), (4, 1.0), (10, 1.0)]:
        pause = restart_pause(failures, POLICY)
        assert low <= pause <= low + POLICY.first_s


async def test_an_exit_is_reported_and_restarted_with_growing_pauses() -> None:
    lines: list[str] = []
    child = FakeChild("worker", exits=[1, 75, -9], lines=["boom: no table"])
    pauses = Pauses()
    task = asyncio.create_task(supervise([child], lines.append, policy=POLICY, sleep=pauses))

    async def restarted() -> bool:
        return child.starts == 4 and child.running()

    await eventually(restarted, within=5, what="three restarts", running=[task])
    assert "cw dev: worker exited with status 1; restarting in" in "\n".join(lines)
    assert any("worker exited with status 75; restarting" in line for line in lines)
    assert any("worker was killed by SIGKILL; restarting" in line for line in lines)
    assert "cw dev: worker's last 1 lines:" in lines
    assert "    boom: no table" in lines
    assert pauses.taken[0] < pauses.taken[1] < pauses.taken[2]

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert child.stops == 1
    assert not child.running()
    assert child.starts == 4  # nothing restarted while stopping


async def test_a_run_that_lasted_resets_the_pause() -> None:
    now = [0.0]

    def clock() -> float:
        return now[0]

    class Lasting(FakeChild):
        async def finished(self, say: Say) -> int:
            now[0] += STEADY_S if self.starts == 3 else 0.1
            return await super().finished(say)

    child = Lasting("worker", exits=[1, 1, 1])
    pauses = Pauses()
    stopping = asyncio.Event()
    task = asyncio.create_task(
        keep_running(child, lambda _: None, stopping, policy=POLICY, sleep=pauses, clock=clock)
    )

    async def fourth() -> bool:
        return child.starts == 4

    await eventually(fourth, within=5, what="three restarts", running=[task])
    assert pauses.taken[1] >= 0.4
    assert pauses.taken[2] <= 0.2 + POLICY.first_s  # the third run lasted: from the start
    stopping.set()
    await child.stop()
    await asyncio.wait_for(task, 5)


async def test_cancelling_stops_every_child_and_restarts_none() -> None:
    lines: list[str] = []
    steady = FakeChild("steady", exits=[])
    crashing = FakeChild("crashing", exits=[1])

    class Endless(Pauses):
        async def __call__(self, seconds: float) -> None:
            self.taken.append(seconds)
            await asyncio.Event().wait()  # still pausing when cw dev stops

    task = asyncio.create_task(
        supervise([steady, crashing], lines.append, policy=POLICY, sleep=Endless())
    )

    async def crashed() -> bool:
        return any("crashing exited" in line for line in lines)

    await eventually(crashed, within=5, what="the crash", running=[task])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert steady.stops == 1
    assert not steady.running()
    assert crashing.starts == 1
    assert "cw dev: stopping steady" in lines
    assert "cw dev: stopping crashing" not in lines
