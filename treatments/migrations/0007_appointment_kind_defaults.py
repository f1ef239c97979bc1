from django.db import migrations

DEFAULTS = {"consultation": 45, "treatment": 60, "review": 30, "blocked": 60}


def seed(apps, schema_editor):
    setting = apps.get_model("treatments", "AppointmentKindSetting")
    for kind, minutes in DEFAULTS.items():
        setting.objects.get_or_create(kind=kind, defaults={"default_minutes": minutes})


class Migration(migrations.Migration):
    dependencies = [("treatments", "0006_appointmentchange_appointmentkindsetting_and_more")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
