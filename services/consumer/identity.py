"""Is the stream a consumer reads the stream it followed? Pure rules; the source reads the
stream (``StreamPlace``) and the consumer's store its tracking row (``Tracked``).

A stream name is not an identity: a stream deleted and created again (``cw init`` after a NATS
node lost its store), another server with streams of the same names, or a restore from an older
backup all start their sequences again. A consumer whose checkpoint is 171 would then skip the
new stream's first 171 messages, silently. So each tracking row keeps the id of the message at
its checkpoint's sequence, and before a consumer reads (at start, after every reconnect) the
stream must still hold that message there.
"""

from __future__ import annotations

from services.consumer.model import StreamPlace, Tracked

RECHECK_S = 30.0
"""How often a consumer that found another stream looks again (it resumes by itself when the
original stream is back)."""


def stream_replaced(consumer: str, tracked: Tracked, place: StreamPlace) -> str | None:
    """Why ``place`` is not the stream ``consumer`` followed up to ``tracked``; ``None`` when it
    may be.

    Not a replaced stream: nothing taken yet; a checkpoint whose message the stream's own
    limits removed (``first_seq`` beyond it: ``CW_REMINDERS``' age limit, a purge); a message
    deleted at that sequence or a checkpoint committed before ids were kept (nothing to compare).
    """
    seq, stream = tracked.seq, place.stream
    if seq <= 0:
        return None
    ours = f"{_id(tracked.message_id)} at sequence {seq}"
    if seq > place.last_seq:
        what = "is empty" if place.last_seq <= 0 else f"ends at sequence {place.last_seq}"
        return (
            f"{stream} is not the stream the {consumer} followed: its checkpoint is {ours}, "
            f"but {stream} {what} (a new stream, or one restored from an older backup)"
        )
    if seq < place.first_seq or tracked.message_id is None or place.message_id is None:
        return None
    if place.message_id != tracked.message_id:
        return (
            f"{stream} is not the stream the {consumer} followed: its checkpoint is {ours}, "
            f"but {stream} holds {_id(place.message_id)} there (another stream of that name)"
        )
    return None


def remedy(consumer: str, stream: str) -> str:
    """What an operator does about it, said after the reason."""
    checking = f"taking no messages, checking again every {RECHECK_S:.0f} s"
    return f"{checking}. {what_to_do(consumer, stream)}"


def what_to_do(consumer: str, stream: str) -> str:
    """The remedy itself, in the order to try it (also what ``cw audit`` says)."""
    start_again = "`cw rebuild`" if consumer == "projector" else f"`cw tracking reset {consumer}`"
    return (
        f"Restore {stream} from its backup (docs/operations.md); only if this {stream} holds "
        f"the whole history under new sequences, run {start_again}"
    )


def _id(message_id: str | None) -> str:
    if message_id is None:
        return "a message whose id was not recorded"
    return f"message {message_id}"
