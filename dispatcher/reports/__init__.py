"""What a PLP's year looks like: the annual evaluation's figures, computed from the anonymous
counters written with each event, and rendered as JSON, CSV or Markdown.

May import: ``dispatcher.core``, ``dispatcher.storage``.
"""
