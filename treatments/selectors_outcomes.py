"""Reads for outcomes: measurement series from baseline to the latest session, charts, photos."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from patients.models import Area, ClinicalPhoto, Measurement
from treatments.models import SessionMeasurement, TreatmentPlan, TreatmentSession

KIND_LABELS = dict(Measurement.Kind.choices)
AREA_LABELS = dict(Area.choices)


@dataclass(frozen=True)
class Point:
    label: str  # "Baseline", "S1" …
    at: datetime
    value: Decimal


@dataclass(frozen=True)
class Series:
    kind: str
    area: str
    points: list[Point]

    @property
    def title(self) -> str:
        area = AREA_LABELS.get(self.area, "")
        return f"{KIND_LABELS.get(self.kind, self.kind)}{' · ' + str(area) if area else ''}"

    def svg(self, width: int = 420, height: int = 160, pad: int = 28) -> dict[str, object]:
        """Coordinates for a small server-rendered line chart (no script, no CDN)."""
        values = [float(p.value) for p in self.points]
        low, high = min(values), max(values)
        span = (high - low) or 1.0
        step = (width - 2 * pad) / max(len(values) - 1, 1)
        coords = [
            (round(pad + i * step, 1), round(height - pad - (v - low) / span * (height - 2 * pad), 1))
            for i, v in enumerate(values)
        ]
        return {
            "width": width,
            "height": height,
            "polyline": " ".join(f"{x},{y}" for x, y in coords),
            "dots": [
                {"x": x, "y": y, "label": p.label, "value": p.value}
                for (x, y), p in zip(coords, self.points, strict=True)
            ],
            "low": low,
            "high": high,
            "base_y": height - pad + 16,
        }


def plan_outcome_series(plan: TreatmentPlan) -> list[Series]:
    """Per (kind, area): the consultation's baseline, then each session's value, in time order."""
    root = plan.root_id or plan.pk
    grouped: dict[tuple[str, str], list[Point]] = defaultdict(list)
    if plan.consultation_id:
        for m in Measurement.objects.filter(consultation_id=plan.consultation_id):
            grouped[(m.kind, m.area)].append(Point("Baseline", m.measured_at, m.value))
    for m in SessionMeasurement.objects.filter(session__plan__root_id=root).select_related("session"):
        grouped[(m.kind, m.area)].append(Point(f"S{m.session.number}", m.session.performed_at, m.value))
    series = [Series(kind, area, sorted(points, key=lambda p: p.at)) for (kind, area), points in grouped.items()]
    return sorted((s for s in series if len(s.points) >= 1), key=lambda s: (s.kind, s.area))


def plan_gais(plan: TreatmentPlan) -> list[TreatmentSession]:
    root = plan.root_id or plan.pk
    return list(TreatmentSession.objects.filter(plan__root_id=root).select_related("outcome").order_by("number"))


@dataclass(frozen=True)
class BeforeAfter:
    area: str
    view: str
    before: ClinicalPhoto
    after: ClinicalPhoto


def before_after_pairs(patient_id: int) -> list[BeforeAfter]:
    """For each standard view with two photos or more: the first and the latest, side by side."""
    photos = ClinicalPhoto.objects.filter(patient_id=patient_id, hidden_at__isnull=True).order_by("taken_at")
    groups: dict[tuple[str, str], list[ClinicalPhoto]] = defaultdict(list)
    for photo in photos:
        groups[(photo.area, photo.view.strip().lower())].append(photo)
    return [
        BeforeAfter(area, view, items[0], items[-1])
        for (area, view), items in sorted(groups.items())
        if len(items) >= 2
    ]
