"""An index in the list's order: (search_name COLLATE "C", id).

The keyset index ``patient_name_keyset`` uses ``text_pattern_ops``, which serves a prefix
match but not ``ORDER BY search_name`` (unless the database collation is exactly "C"): the
list sorted every patient on every page (a sequential scan, 73 ms at 100,000 patients).
With the "C" collation one btree serves the order, the keyset cursor and the surname
prefix (``LIKE 'dub%'`` becomes a range of it): page 1, page 20,000 and a search that
matches thousands of names all read about 26 index entries (B1, B2, B5 in
docs/benchmarks.md). search_name is folded to lower-case ASCII, so byte order is the
alphabetical order.

Raw SQL rather than ``Meta.indexes``: the model's module belongs to another change; moving
it into ``Meta.indexes`` later needs only ``SeparateDatabaseAndState``.
"""

from __future__ import annotations

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("patients", "0006_transactional_help")]

    operations = [
        migrations.RunSQL(
            'CREATE INDEX IF NOT EXISTS patient_name_order ON patients_patient ((search_name COLLATE "C"), id);',
            "DROP INDEX IF EXISTS patient_name_order;",
        )
    ]
