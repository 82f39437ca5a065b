"""Signals host projects can connect to.

All are sent after the outcome is stored, with ``sender=Event``:

- ``event_sent(dataset_id, event_ids, attempt)``: Meta accepted these events.
- ``event_failed(dataset_id, event_ids, reason, attempt)``: these events will not be sent
  (rejected by Meta, out of retries, or expired); ``attempt`` is None for expiry.
- ``dataset_paused(dataset_id, code, subcode, reason)``: a token or permission error stopped
  delivery for a dataset; its events stay pending.
- ``dataset_resumed(dataset_id)``: delivery for a paused dataset works again.
"""

from django.dispatch import Signal

event_sent = Signal()
event_failed = Signal()
dataset_paused = Signal()
dataset_resumed = Signal()
