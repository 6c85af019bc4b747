"""A chart's titles: the widget's title, and the label field's name by its date grouping."""

from __future__ import annotations

from collections.abc import Sequence

from app.charts.spec import ChartText
from app.fieldtypes import DateGrouping
from app.models import Field as FieldModel
from app.models import Widget

_GROUPING_NAMES = {
    DateGrouping.DAY: "day",
    DateGrouping.WEEK: "ISO week",
    DateGrouping.MONTH: "month",
    DateGrouping.QUARTER: "quarter",
    DateGrouping.YEAR: "year",
}


def chart_text(widget: Widget, fields: Sequence[FieldModel]) -> ChartText:
    """The widget's title, and the label field's name (by its date grouping, if any)."""
    label = next((f for f in fields if f.id == widget.label_field_id), None)
    x_title = None
    if label is not None:
        grouping = DateGrouping(widget.date_grouping or "")
        x_title = label.field_label
        if grouping is not DateGrouping.NONE:
            x_title = f"{label.field_label} (by {_GROUPING_NAMES[grouping]})"
    return ChartText(title=widget.title, x_title=x_title)
