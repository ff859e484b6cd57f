"""The alert pipeline, from the police's POST to the member's acknowledgement: intake, fan-out
into deliveries, send batches and their claims, composing each channel's message, retries and
fallback, the clock that re-dispatches and runs timers, escalation, notifications, Telegram
answers, receipts (acknowledgements, replies, STOP), audiences and estimates. Every job the
workers run is named, enqueued and scheduled in ``jobs``.

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``, ``dispatcher.access``,
``dispatcher.geo`` (who is inside an alert's area), ``dispatcher.operations`` (to beat and count), and
``channels`` (the ``Channel`` protocol, the inbound
events and the registry: ``channels``, ``channels.base``, ``channels.inbound``, ``channels.registry``;
never a vendor's package or library).
"""
