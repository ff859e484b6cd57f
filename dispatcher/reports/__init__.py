"""What a PLP's year looks like: the annual evaluation's figures (``models``), computed from the
anonymous counters written with each event (``dispatcher.storage.counters``) and the alerts'
delivery indexes (``computation``), and rendered as CSV or Markdown (``rendering``).

May import: ``config``, ``dispatcher.core``, ``dispatcher.storage``.
"""

from dispatcher.reports.computation import evaluate, keep_alert_figures
from dispatcher.reports.models import Evaluation
from dispatcher.reports.rendering import FILE_FORMATS, EvaluationFormat, csv_rows, filename, render, to_csv, to_markdown

__all__ = [
    "FILE_FORMATS",
    "Evaluation",
    "EvaluationFormat",
    "csv_rows",
    "evaluate",
    "filename",
    "keep_alert_figures",
    "render",
    "to_csv",
    "to_markdown",
]
