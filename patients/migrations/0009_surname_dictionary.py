"""The surname dictionary (``patients_surname``): each folded surname once, with its count.

Kept by three statement-level triggers on ``patients_patient``, one per operation, each
reading the statement's transition tables: a bulk insert of a million patients costs one
grouped upsert, not a million row-level ones. An update changes a count only where the
folded surname changed (the net difference per surname), so editing a phone number does
not touch the dictionary. Rows are upserted in surname order, so two registrations never
lock the same two rows in opposite orders. A surname whose count reaches 0 stays, at 0
(the search skips it).
"""

from __future__ import annotations

import django.contrib.postgres.indexes
from django.db import migrations, models

DELTA = {
    "INSERT": "SELECT mesoclinic_fold(last_name) AS surname, 1 AS n FROM new_rows",
    "UPDATE": (
        "SELECT mesoclinic_fold(last_name) AS surname, 1 AS n FROM new_rows "
        "UNION ALL SELECT mesoclinic_fold(last_name), -1 FROM old_rows"
    ),
    "DELETE": "SELECT mesoclinic_fold(last_name) AS surname, -1 AS n FROM old_rows",
}
REFERENCING = {
    "INSERT": "REFERENCING NEW TABLE AS new_rows",
    "UPDATE": "REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "DELETE": "REFERENCING OLD TABLE AS old_rows",
}


def _function(operation: str) -> str:
    name = f"patients_surname_on_{operation.lower()}"
    return f"""
CREATE OR REPLACE FUNCTION {name}() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    WITH delta AS (
        SELECT surname, sum(n) AS n FROM ({DELTA[operation]}) AS changed
        GROUP BY surname HAVING sum(n) <> 0
    ), fewer AS (
        UPDATE patients_surname AS s SET patients = greatest(s.patients + delta.n, 0)
        FROM delta WHERE s.surname = delta.surname AND delta.n < 0
    )
    INSERT INTO patients_surname (surname, patients)
    SELECT surname, n FROM delta WHERE n > 0 ORDER BY surname
    ON CONFLICT (surname) DO UPDATE SET patients = patients_surname.patients + excluded.patients;
    RETURN NULL;
END
$$;
CREATE TRIGGER {name} AFTER {operation} ON patients_patient
{REFERENCING[operation]} FOR EACH STATEMENT EXECUTE FUNCTION {name}();
"""  # noqa: S608 - built from this module's constants only  # nosec B608


def _reverse(operation: str) -> str:
    name = f"patients_surname_on_{operation.lower()}"
    return f"DROP TRIGGER IF EXISTS {name} ON patients_patient; DROP FUNCTION IF EXISTS {name}();"


BACKFILL_SQL = """
INSERT INTO patients_surname (surname, patients)
SELECT mesoclinic_fold(last_name), count(*) FROM patients_patient GROUP BY 1 ORDER BY 1;
"""


class Migration(migrations.Migration):
    dependencies = [("patients", "0008_photo_source")]

    operations = [
        migrations.CreateModel(
            name="Surname",
            fields=[
                ("surname", models.TextField(primary_key=True, serialize=False)),
                ("patients", models.PositiveIntegerField(default=0)),
            ],
            options={
                "indexes": [
                    django.contrib.postgres.indexes.GinIndex(
                        django.contrib.postgres.indexes.OpClass("surname", name="gin_trgm_ops"), name="surname_trgm"
                    )
                ],
            },
        ),
        *(migrations.RunSQL(_function(op), _reverse(op)) for op in ("INSERT", "UPDATE", "DELETE")),
        migrations.RunSQL(BACKFILL_SQL, migrations.RunSQL.noop),
    ]
