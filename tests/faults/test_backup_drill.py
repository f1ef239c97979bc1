"""The backup drill (bench/backup_drill.py) on a small dataset: the test database, with a
clinic's worth of records committed, dumped and restored into a fresh database on the same
server; every table's rows and checksum, the sequences, the triggers (the audit trail's
append-only protection) and the extensions equal; the app answers on the copy.
"""

from __future__ import annotations

import re
import subprocess
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from django.utils import timezone

from aftercare.models import OutboundMessage
from bench.backup_drill import (
    Server,
    client_program,
    database_drop,
    database_figures,
    drill,
    figures_compare,
    server_major,
)
from mesoclinic.access import Role
from mesoclinic.models import User
from patients.models import Patient
from patients.services.history import history_record
from tests.factories import PatientFactory, UserFactory
from tests.faults.conftest import _test_database_name, _test_database_server
from treatments.catalogue_seed import catalogue_seed
from treatments.models import ProtocolTemplate
from treatments.services.plans import plan_create

pytestmark = pytest.mark.django_db(transaction=True)


def _clinic_records(practitioner: User) -> None:
    """Records of every kind the drill must carry: patients, histories, plans with areas
    and products (and their audit events), outbox rows."""
    catalogue_seed()
    UserFactory(email="drill-manager@example.test", role=Role.MANAGER)
    protocol = ProtocolTemplate.objects.get(name__startswith="Lipolysis")
    for number in range(5):
        patient = PatientFactory(created_by=practitioner)
        history_record(patient=patient, recorded_by=practitioner, conditions=[], weight_kg=Decimal(60 + number))
        plan_create(patient=patient, practitioner=practitioner, concern="fat_reduction", protocol=protocol)
        OutboundMessage.objects.create(
            kind="appointment_reminder",
            to_email=patient.email,
            subject="Reminder",
            body_text="See you tomorrow.",
            dedupe_key=f"drill:{number}",
            due_at=timezone.now() + timedelta(days=1),
        )


def _execute(server: Server, dbname: str, sql: str) -> None:
    with psycopg.connect(server.conninfo(dbname), autocommit=True) as conn:
        conn.execute(sql)  # type: ignore[arg-type]


def test_the_drill_restores_every_row_and_the_app_works_on_the_copy(practitioner: User, tmp_path: Path) -> None:
    _clinic_records(practitioner)
    server, source = _test_database_server(), _test_database_name()

    report = drill(server, source_db=source, prefix="", seed=False, jobs=2, keep=True, workdir=tmp_path)
    try:
        assert report.mismatches == []
        assert report.smoke == {
            "check": "ok",
            "migrate_check": "ok",
            "pages": {"login": 200, "patient_list": 200, "patient_detail": 200, "audit_log": 200},
        }
        assert report.ok
        assert report.tables["patients_patient"]["rows"] == Patient.objects.count() == 5
        assert report.tables["treatments_planarea"]["rows"] > 0
        assert report.tables["treatments_planareaevent"]["rows"] > 0
        assert 0 < report.restore_seconds < 120 and report.dump_bytes > 0
        major, _version = server_major(server)
        for program in (report.pg_dump, report.pg_restore):
            output = subprocess.run([program, "--version"], capture_output=True, text=True, check=True).stdout
            assert re.search(rf"\b{major}\.\d+", output), output

        # The comparison sees what a bad restore would get wrong: one changed value, and the
        # append-only trigger of an audit table missing. (Against the copy as the smoke test
        # left it: signing in and reading a record write sessions and audit rows.)
        restored = report.restored
        as_restored = database_figures(server, restored)
        _execute(
            server, restored, "UPDATE aftercare_outboundmessage SET subject = 'Changed' WHERE dedupe_key = 'drill:3'"
        )
        trigger = next(t for t in database_figures(server, source)["triggers"]["patients_patientevent"].split(","))
        _execute(server, restored, f'DROP TRIGGER "{trigger}" ON patients_patientevent')
        mismatches = figures_compare(as_restored, database_figures(server, restored))
        assert [line.split(":")[0] for line in mismatches] == [
            "table aftercare_outboundmessage",
            "trigger patients_patientevent",
        ], mismatches
    finally:
        database_drop(server, report.restored)


def test_the_drill_takes_client_programs_of_the_servers_version() -> None:
    major, _version = server_major(_test_database_server())
    path = client_program("pg_restore", major)
    output = subprocess.run([path, "--version"], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"\b{major}\.\d+", output), output
    with pytest.raises(SystemExit, match="no pg_restore of PostgreSQL 9"):
        client_program("pg_restore", 9)


def test_the_drill_drops_only_its_own_databases() -> None:
    with pytest.raises(SystemExit, match="refusing"):
        database_drop(_test_database_server(), _test_database_name())
