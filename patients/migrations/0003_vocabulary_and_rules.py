"""Seed the allergen vocabulary and the contraindication rules from DOMAIN.md.

They are data: a manager can change severities and reasons, or add rules, later.
"""

from django.db import migrations

from patients.vocabulary import vocabulary_seed


def seed(apps, schema_editor):
    vocabulary_seed(apps)


class Migration(migrations.Migration):
    dependencies = [("patients", "0002_allergen_clinicalphoto_consenttext_consent_and_more")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
