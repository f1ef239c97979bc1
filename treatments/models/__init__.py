from treatments.models.catalogue import DoseLimit, Ingredient, Lot, Product, ProductComponent
from treatments.models.plans import (
    FACE_AREAS,
    PlanAcknowledgement,
    PlanArea,
    PlanProduct,
    ProtocolTemplate,
    Technique,
    TreatmentPlan,
)

__all__ = [
    "FACE_AREAS",
    "DoseLimit",
    "Ingredient",
    "Lot",
    "PlanAcknowledgement",
    "PlanArea",
    "PlanProduct",
    "Product",
    "ProductComponent",
    "ProtocolTemplate",
    "Technique",
    "TreatmentPlan",
]
