from patients.models.clinical import (
    Allergen,
    Area,
    Concern,
    Condition,
    Consultation,
    ContraindicationRule,
    HistoryAllergy,
    HistoryMedication,
    IngredientCategory,
    Measurement,
    MedicalHistory,
    MedicationFlag,
)
from patients.models.consent import Consent, ConsentText, ConsentWithdrawal
from patients.models.photos import ClinicalPhoto
from patients.models.registry import Fold, Language, Patient, Sex, Surname

__all__ = [
    "Allergen",
    "Area",
    "ClinicalPhoto",
    "Concern",
    "Condition",
    "Consent",
    "ConsentText",
    "ConsentWithdrawal",
    "Consultation",
    "ContraindicationRule",
    "Fold",
    "HistoryAllergy",
    "HistoryMedication",
    "IngredientCategory",
    "Language",
    "Measurement",
    "MedicalHistory",
    "MedicationFlag",
    "Patient",
    "Sex",
    "Surname",
]
