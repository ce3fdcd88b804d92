"""The projector's single-writer lock is the consumer kit's lease."""

from services.consumer.lease import LEASE_EPOCH, TAKE_LEASE, SingleWriter

__all__ = ["LEASE_EPOCH", "TAKE_LEASE", "SingleWriter"]
