"""Dashboard bodies: a title, a description and a layout of widgets on a 12-column grid."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, field_validator, model_validator

from app.core.schemas import InputSchema, Schema, Timestamp, optional_not_null, stripped_not_blank
from app.models.dashboard import GRID_COLUMNS, GRID_ROWS, MAX_HEIGHT
from app.widgets.schemas import ChartType

MAX_LAYOUT_ENTRIES = 100
MAX_DESCRIPTION = 10_000

Title = Annotated[
    str,
    Field(
        min_length=1,
        max_length=255,
        description="1 to 255 characters, not blank (surrounding spaces are dropped).",
        examples=["Sales overview"],
    ),
]
Description = Annotated[
    str, Field(max_length=MAX_DESCRIPTION, examples=["Revenue and deals, by region and month"])
]
WidgetRef = Annotated[
    int,
    Field(
        ge=1,
        le=2**63 - 1,
        description="A widget of any of your data items.",
        examples=[7],
    ),
]


class LayoutEntry(InputSchema):
    """A widget and its place: column `x` (0 to 11) and row `y` of its top-left cell, its width
    `w` in columns and height `h` in rows. It must fit the 12 columns (`x + w <= 12`)."""

    widget_id: WidgetRef
    x: int = Field(ge=0, le=GRID_COLUMNS - 1, description="Column, 0 to 11.", examples=[0])
    y: int = Field(ge=0, le=GRID_ROWS - 1, description="Row, 0 to 999.", examples=[0])
    w: int = Field(ge=1, le=GRID_COLUMNS, description="Width in columns, 1 to 12.", examples=[6])
    h: int = Field(ge=1, le=MAX_HEIGHT, description="Height in rows, 1 to 100.", examples=[4])

    @model_validator(mode="after")
    def _fits(self) -> LayoutEntry:
        if self.x + self.w > GRID_COLUMNS:
            raise ValueError(
                f"x + w must be at most {GRID_COLUMNS} (the grid's columns); got "
                f"{self.x} + {self.w}"
            )
        if self.y + self.h > GRID_ROWS:
            raise ValueError(f"y + h must be at most {GRID_ROWS}; got {self.y} + {self.h}")
        return self


_LAYOUT_DESCRIPTION = (
    f"The widgets shown, in order: at most {MAX_LAYOUT_ENTRIES}, each widget at most once. "
    f"A {GRID_COLUMNS}-column grid: x 0..{GRID_COLUMNS - 1}, w 1..{GRID_COLUMNS}, "
    f"x + w <= {GRID_COLUMNS}; y 0..{GRID_ROWS - 1}, h 1..{MAX_HEIGHT}, y + h <= {GRID_ROWS}. "
    "Entries may overlap (the grid is the client's to arrange)."
)
Layout = Annotated[
    list[LayoutEntry],
    Field(
        max_length=MAX_LAYOUT_ENTRIES,
        description=_LAYOUT_DESCRIPTION,
        examples=[
            [
                {"widget_id": 7, "x": 0, "y": 0, "w": 6, "h": 4},
                {"widget_id": 9, "x": 6, "y": 0, "w": 6, "h": 4},
            ]
        ],
    ),
]


def _once_each(layout: list[LayoutEntry] | None) -> list[LayoutEntry] | None:
    if layout is None:
        return None
    seen: dict[int, int] = {}
    for i, entry in enumerate(layout):
        if entry.widget_id in seen:
            raise ValueError(
                f"widget {entry.widget_id} is in the layout twice (entries {seen[entry.widget_id]}"
                f" and {i}): a widget appears at most once on a dashboard"
            )
        seen[entry.widget_id] = i
    return layout


class DashboardCreate(InputSchema):
    title: Title
    description: Description = ""
    layout: Layout = Field(default_factory=list)

    _title = field_validator("title")(stripped_not_blank)
    _layout = field_validator("layout")(_once_each)

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "title": "Sales overview",
                    "description": "Revenue and deals, by region and month",
                    "layout": [
                        {"widget_id": 7, "x": 0, "y": 0, "w": 6, "h": 4},
                        {"widget_id": 9, "x": 6, "y": 0, "w": 6, "h": 4},
                    ],
                }
            ]
        }
    )


_NOT_NULL = ("title", "description", "layout")


class DashboardUpdate(InputSchema):
    """Only what is sent changes; `layout`, when sent, replaces the whole layout."""

    title: Title | None = None
    description: Description | None = None
    layout: Layout | None = None

    _title = field_validator("title")(stripped_not_blank)
    _layout = field_validator("layout")(_once_each)

    @model_validator(mode="before")
    @classmethod
    def _no_nulls(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _NOT_NULL:
                if key in data and data[key] is None:
                    raise ValueError(
                        f"{key} must not be null (leave the key out to keep the current value)"
                    )
        return data

    model_config = ConfigDict(
        json_schema_extra=optional_not_null(
            *_NOT_NULL,
            examples=[{"title": "Sales overview (2026)"}, {"layout": []}],
        )
    )


class LayoutEntryRead(Schema):
    widget_id: int = Field(examples=[7])
    data_item_id: int = Field(examples=[42], description="The data item the widget belongs to.")
    title: str = Field(examples=["Revenue by Region"], description="The widget's title.")
    chart_type: ChartType = Field(examples=["bar"], description="The widget's chart type.")
    x: int = Field(examples=[0])
    y: int = Field(examples=[0])
    w: int = Field(examples=[6])
    h: int = Field(examples=[4])


class DashboardRead(Schema):
    id: int = Field(examples=[3])
    title: str = Field(examples=["Sales overview"])
    description: str = Field(examples=["Revenue and deals, by region and month"])
    layout: list[LayoutEntryRead] = Field(
        description="In the order given; a deleted widget (or item) has left it."
    )
    created_at: Timestamp
    updated_at: Timestamp


class DashboardList(Schema):
    total: int = Field(examples=[1], description="How many dashboards you have in all.")
    offset: int = Field(examples=[0])
    limit: int = Field(examples=[100])
    dashboards: list[DashboardRead]
