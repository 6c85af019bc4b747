"""What the fuzzer aims at: an account with a real key and a data item that has one field of each
type, rows, a widget with a series (on a dashboard) and a reference file, so that generated
requests reach real resources (not only 404s). Path parameters (and a layout's `widget_id`) are
swapped for these ids most of the time; when a generated DELETE removes something, the next case
seeds a fresh item."""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from typing import Any

import requests
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.fixtures.live import LiveServer

CSV = (
    b"Region,Revenue,Close Date,Closed,Notes\r\n"
    b"North,45200.50,2026-01-15,yes,first\r\n"
    b"South,-0.25,2026-02-28,no,\r\n"
    b'East,1e3,,yes,"multi\nline"\r\n'
)


class World:
    def __init__(self, live: LiveServer) -> None:
        self.live = live
        _, _, self.key = live.new_account("Fuzzer")
        self.session = requests.Session()
        self.session.headers["X-Api-Key"] = self.key
        self.ids: dict[str, list[str]] = {}
        self.dirty = True
        self.sent: dict[str, Counter[int]] = defaultdict(Counter)
        self.skipped: Counter[str] = Counter()

    def api(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self.session.request(method, f"{self.live.url}/api/v1{path}", timeout=30, **kwargs)
        assert r.status_code < 300, (method, path, r.status_code, r.text)
        return r.json()

    def seed(self) -> None:
        made = self.api(
            "POST", "/data-items/create-from-file/",
            data={"data_name": "Fuzz"}, files={"data_file": ("fuzz.csv", CSV)},
        )  # fmt: skip
        item = made["id"]
        fields = {f["field_label"]: f["id"] for f in made["fields"]}
        widget = self.api(
            "POST", f"/data-items/{item}/widgets/",
            json={"title": "W", "chart_type": "bar", "label_field": fields["Region"],
                  "series": [{"value_field": fields["Revenue"], "aggregation": "sum"}]},
        )  # fmt: skip
        place = {"widget_id": widget["id"], "x": 0, "y": 0, "w": 6, "h": 4}
        dashboard = self.api("POST", "/dashboards/", json={"title": "D", "layout": [place]})
        self.ids = {
            "item_id": [str(item)],
            "field_id": [str(f) for f in fields.values()],
            "row_ref": ["0", "1", "2"],
            "widget_id": [str(widget["id"])],
            "series_id": [str(s["id"]) for s in widget["series"]],
            "file_id": [str(made["reference_file"]["id"])],
            "upload_id": [str(made["reference_file"]["id"])],
            "dashboard_id": [str(dashboard["id"])],
        }
        self.dirty = False

    def aim(self, case: Any) -> None:
        """Swap generated path parameters for real ids (each with probability 0.8), unless the
        path itself was generated to be invalid (negative cases must stay negative)."""
        if self.dirty:
            self.seed()
        rng = random.Random(repr((case.path_parameters, case.query, case.body)))
        if self._positive(case, ParameterLocation.PATH):
            for name in list(case.path_parameters or {}):
                known = self.ids.get(name)
                if known and rng.random() < 0.8:
                    case.path_parameters[name] = rng.choice(known)
        if self._positive(case, ParameterLocation.BODY) and isinstance(case.body, dict):
            self._aim_fields(case.body, rng)
        query = case.query if self._positive(case, ParameterLocation.QUERY) else None
        if query and "sort" in query and rng.random() < 0.5:
            picked = rng.sample(self.ids["field_id"], k=rng.randint(1, 3))
            query["sort"] = ",".join(rng.choice(["", "-"]) + f for f in picked)

    @staticmethod
    def _positive(case: Any, where: ParameterLocation) -> bool:
        component = case.meta.components.get(where) if case.meta else None
        return component is None or component.mode is not GenerationMode.NEGATIVE

    def _aim_fields(self, node: Any, rng: random.Random) -> None:
        """Field references in a body (`value_field`, `label_field`, a condition's `field`, the
        keys of row values) become real field ids, so values meet the field-type parsers."""
        fields = self.ids["field_id"]
        if isinstance(node, list):
            for child in node:
                self._aim_fields(child, rng)
            return
        if not isinstance(node, dict):
            return
        for key, value in list(node.items()):
            if key in ("value_field", "label_field", "field") and isinstance(value, int):
                if rng.random() < 0.8:
                    node[key] = int(rng.choice(fields))
            elif key == "widget_id" and isinstance(value, int):  # a dashboard's layout entry
                if rng.random() < 0.8:
                    node[key] = int(rng.choice(self.ids["widget_id"]))
            elif key == "values" and isinstance(value, dict):
                node[key] = self._row(value, rng)
            elif key == "rows" and isinstance(value, list):
                node[key] = [self._row(r, rng) if isinstance(r, dict) else r for r in value]
            else:
                self._aim_fields(value, rng)

    def _row(self, values: dict[str, Any], rng: random.Random) -> dict[str, Any]:
        if rng.random() >= 0.8:
            return values
        fields = self.ids["field_id"]
        return {rng.choice(fields): v for v in values.values()}

    def record(self, label: str, method: str, status: int) -> None:
        self.sent[label][status] += 1
        if method == "DELETE" and status == 200:
            self.dirty = True

    def report(self) -> str:
        lines = []
        total = 0
        for label in sorted(self.sent):
            counts = self.sent[label]
            n = sum(counts.values())
            total += n
            statuses = " ".join(f"{s}:{c}" for s, c in sorted(counts.items()))
            skipped = (
                f" (over time budget: {self.skipped[label]} not sent)"
                if label in self.skipped
                else ""
            )
            lines.append(f"{n:6d}  {label}  [{statuses}]{skipped}")
        lines.append(f"{total:6d}  cases over {len(self.sent)} operations")
        return "\n".join(lines)
