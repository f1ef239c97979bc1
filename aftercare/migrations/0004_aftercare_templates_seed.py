"""The aftercare advice a new clinic starts from (English and French), editable by managers."""

from django.db import migrations


def seed(apps, schema_editor):
    from aftercare.seed import aftercare_templates_seed

    aftercare_templates_seed(apps)


class Migration(migrations.Migration):
    dependencies = [("aftercare", "0003_aftercaretemplate_aftercaretemplateevent_and_more")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
