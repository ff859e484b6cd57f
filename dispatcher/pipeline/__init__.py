"""The alert pipeline, from the police's POST to the member's acknowledgement: intake, fan-out
into deliveries, send batches and their claims, composing each channel's message, retries and
fallback, the clock that re-dispatches and runs timers, escalation, notifications, Telegram
answers, receipts (acknowledgements, replies, STOP), audiences and estimates.

May import: ``dispatcher.core``, ``dispatcher.storage``, ``dispatcher.access``, ``dispatcher.reports``,
and ``channels`` (the ``Channel`` protocol and the registry, never a vendor library).
"""
