"""B1–B3, B5 data: patients with realistic names, and treatment sessions over 50 practitioners.

    createdb -h 127.0.0.1 -U postgres mesoclinic_bench100k
    export DATABASE_URL=postgres://postgres@127.0.0.1:5432/mesoclinic_bench100k
    .venv/bin/python manage.py migrate
    .venv/bin/python manage.py bench_seed_patients --patients 100000 --sessions 1000000

Names follow a clinic's real mix: a weighted list of common French and European surnames
(Martin about 0.35 % of patients, then Bernard, Dubois, …, García, Müller, Nguyen) covering
about a tenth of the patients, and a long Zipf-shaped tail of rarer surnames built from
French syllables (thousands of distinct names, a few hyphenated); first names with their
accents (Élodie, Hélène, Zoé, François, Maëlle…), three quarters women as in an aesthetic
clinic. Emails, phones, birth dates, cities; 3 % archived. The rows are made in Python with a
fixed seed (the same data on every machine) and loaded with COPY; the patient indexes are
dropped for the load and rebuilt after it, which is several times faster than maintaining
the trigram index row by row.

Sessions: every plan is a completed four-session course (consent signed, sessions 28 days
apart, all in the past), one practitioner each, round robin over the 50; generated in
PostgreSQL (``INSERT … SELECT``). The history triggers are skipped for the load
(``pgtrigger.ignore``, no superuser needed): the rows are synthetic and no benchmarked page
reads their history. The append-only triggers of the event tables are untouched.

Idempotent: a second run tops the patients up to ``--patients`` and the sessions up to
``--sessions``, and adds nothing when both are there. Refuses a database whose name does not
contain "bench" unless ``--force``.
"""

from __future__ import annotations

import itertools
import random
import time as clock
import unicodedata
from datetime import date, timedelta
from typing import Any

import pgtrigger
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, models, transaction
from django.utils import timezone

from mesoclinic.models import User
from patients.models import Consent, ConsentText, Patient
from treatments.management.commands.bench_seed_calendar import Command as CalendarSeed
from treatments.management.commands.bench_seed_calendar import _bound, _defaults
from treatments.models import TreatmentPlan, TreatmentSession

# Weights are roughly "bearers per 100,000 people" in France (INSEE order), with the
# European and Vietnamese names a Paris or Lyon clinic sees every day.
COMMON_SURNAMES: dict[str, int] = {
    "Martin": 350, "Bernard": 190, "Thomas": 175, "Petit": 165, "Robert": 160, "Richard": 158,
    "Durand": 150, "Dubois": 148, "Moreau": 143, "Laurent": 140, "Simon": 133, "Michel": 130,
    "Lefèvre": 126, "Leroy": 123, "Roux": 119, "David": 116, "Bertrand": 115, "Morel": 112,
    "Fournier": 108, "Girard": 105, "Bonnet": 102, "Dupont": 101, "Lambert": 98, "Fontaine": 98,
    "Rousseau": 95, "Vincent": 94, "Müller": 91, "Lefebvre": 91, "Mercier": 88, "Blanc": 87,
    "Guérin": 84, "Boyer": 84, "Garnier": 80, "Chevalier": 80, "François": 77, "Legrand": 77,
    "Gauthier": 77, "García": 74, "Perrin": 73, "Robin": 73, "Clément": 70, "Morin": 70,
    "Nicolas": 70, "Henry": 66, "Roussel": 66, "Mathieu": 66, "Gautier": 63, "Masson": 63,
    "Marchand": 63, "Duval": 63, "Denis": 60, "Dumont": 60, "Marie": 60, "Lemaire": 60,
    "Noël": 56, "Meyer": 56, "Dufour": 56, "Meunier": 56, "Brun": 52, "Blanchard": 52,
    "Giraud": 52, "Joly": 52, "Rivière": 49, "Lucas": 49, "Brunet": 49, "Gaillard": 49,
    "Barbier": 45, "Arnaud": 45, "Martínez": 45, "Gérard": 45, "Roche": 42, "Renard": 42,
    "Schmitt": 42, "Roy": 42, "Leroux": 42, "Colin": 38, "Vidal": 38, "Caron": 38, "Picard": 38,
    "Roger": 38, "Fabre": 35, "Aubert": 35, "Lemoine": 35, "Renaud": 35, "Dumas": 35,
    "Lacroix": 35, "Olivier": 35, "Philippe": 35, "Bourgeois": 32, "Pierre": 32, "Benoît": 32,
    "Rey": 32, "Leclerc": 32, "Payet": 32, "Rolland": 32, "Leclercq": 28, "Guillaume": 28,
    "Lecomte": 28, "López": 28, "Jean": 28, "Dupuy": 28, "Guillot": 28, "Hubert": 28,
    "Berger": 28, "Carpentier": 28, "Sánchez": 28, "Dupuis": 28, "Moulin": 25, "Louis": 25,
    "Deschamps": 25, "Huet": 25, "Vasseur": 25, "Perez": 25, "Boucher": 25, "Fleury": 25,
    "Royer": 25, "Klein": 25, "Jacquet": 25, "Adam": 25, "Paris": 25, "Poirier": 25,
    "Marty": 25, "Aubry": 25, "Guyot": 25, "Carré": 21, "Charles": 21, "Renault": 21,
    "Charpentier": 21, "Ménard": 21, "Maillard": 21, "Baron": 21, "Bertin": 21, "Bailly": 21,
    "Hervé": 21, "Schneider": 21, "Fernández": 21, "Le Gall": 21, "Collet": 21, "Léger": 21,
    "Bouvier": 21, "Julien": 21, "Prévost": 21, "Millet": 18, "Perrot": 18, "Daniel": 18,
    "Le Roux": 18, "Cousin": 18, "Germain": 18, "Breton": 18, "Besson": 18, "Langlois": 18,
    "Rémy": 18, "Le Goff": 18, "Pelletier": 18, "Lévêque": 18, "Perrier": 18, "Leblanc": 18,
    "Barré": 18, "Lebrun": 18, "Marchal": 18, "Weber": 18, "Mallet": 18, "Hamon": 18,
    "Boulanger": 18, "Jacob": 18, "Monnier": 18, "Michaud": 18, "Rodríguez": 18, "Guichard": 18,
    "Gillet": 18, "Étienne": 18, "Grondin": 18, "Poulain": 18, "Tessier": 18, "Chevallier": 18,
    "Collin": 18, "Chauvin": 18, "Da Silva": 18, "Bouchet": 18, "Gay": 18, "Lemaître": 18,
    "Bénard": 18, "Maréchal": 18, "Humbert": 18, "Reynaud": 18, "Antoine": 18, "Hoarau": 18,
    "Perret": 18, "Barthélemy": 18, "Cordier": 18, "Pichon": 18, "Lejeune": 18, "Gilbert": 18,
    "Lamy": 18, "Delaunay": 18, "Pasquier": 18, "Carlier": 18, "Laporte": 18, "Nguyen": 42,
    "Tran": 18, "Pham": 12, "Dos Santos": 18, "Ferreira": 18, "Gonçalves": 14, "Rossi": 14,
    "Schmidt": 14, "Fischer": 14, "Wagner": 14, "Becker": 14, "Haddad": 14, "Benali": 14,
    "Cohen": 18, "Lévy": 14, "Kowalski": 10, "Papadopoulos": 10, "Çelik": 10, "Yılmaz": 10,
    "Jiménez": 10, "Muñoz": 10, "Dvořák": 5, "Søndergaard": 4, "Ångström": 3, "O'Brien": 6,
    "D'Angelo": 6, "Saint-Martin": 8, "De La Fontaine": 4,
}  # fmt: skip
# About a tenth of the patients bear one of the names above, as in France's population.
COMMON_SHARE = 0.10
FEMALE_NAMES: dict[str, int] = {
    "Marie": 60, "Camille": 40, "Léa": 40, "Manon": 35, "Chloé": 35, "Emma": 35, "Inès": 30,
    "Sarah": 30, "Julie": 30, "Laura": 25, "Élodie": 25, "Hélène": 25, "Zoé": 25, "Maëlle": 20,
    "Anaïs": 20, "Océane": 15, "Clémence": 20, "Mélanie": 20, "Céline": 25, "Sophie": 30,
    "Nathalie": 30, "Isabelle": 30, "Valérie": 25, "Sandrine": 25, "Stéphanie": 25, "Aurélie": 25,
    "Émilie": 25, "Amélie": 20, "Noémie": 15, "Léonie": 10, "Agnès": 15, "Françoise": 20,
    "Béatrice": 15, "Geneviève": 10, "Joëlle": 10, "Gaëlle": 12, "Maïté": 6, "Noëlle": 6,
    "Héloïse": 8, "Margaux": 15, "Pauline": 20, "Lucie": 20, "Alice": 20, "Juliette": 15,
    "Louise": 15, "Charlotte": 15, "Anne-Sophie": 10, "Marie-Claire": 8, "Thérèse": 6,
    "Solène": 8, "Aïcha": 6, "Fatima": 8, "Yasmine": 8, "Lina": 8, "Maria": 8, "Ana": 6,
    "Mai": 4, "Linh": 4, "Ingrid": 5, "Søren": 1, "Zoë": 3, "Dominique": 8, "Claude": 4,
}  # fmt: skip
MALE_NAMES: dict[str, int] = {
    "Thomas": 30, "Nicolas": 30, "Julien": 25, "François": 25, "Jérôme": 20, "Noël": 8,
    "Stéphane": 20, "Sébastien": 20, "Frédéric": 20, "Cédric": 15, "Grégory": 10, "Jérémy": 10,
    "Benoît": 12, "Loïc": 10, "Gaël": 8, "Raphaël": 12, "Mathéo": 8, "Théo": 10, "Léo": 10,
    "Hugo": 12, "Lucas": 15, "Pierre": 20, "Jean-Luc": 8, "Hervé": 10, "André": 8, "René": 5,
    "Karim": 8, "Mehdi": 8, "Youssef": 5, "José": 6, "Andrés": 3, "Jürgen": 2, "Minh": 3,
    "Dominique": 4, "Claude": 4, "Camille": 3,
}  # fmt: skip
FEMALE_SHARE = 0.75
# fmt: off
SYLLABLE_START = [
    "Bel", "Ber", "Bou", "Cha", "Che", "Cou", "Dar", "Del", "Des", "Du", "Fa", "Fer", "Gal", "Gar",
    "Gre", "Jou", "La", "Lar", "Le", "Mar", "Mau", "Mon", "Mor", "Pa", "Pel", "Per", "Pou", "Ra",
    "Ro", "Sa", "Ser", "Tar", "Tes", "Vau", "Ver", "Vil", "Bé", "Cré", "Gué", "Lé", "Ker", "Tré",
    "Ja", "Qui", "Beau", "Cas", "Lan", "Sou",
]  # fmt: skip
SYLLABLE_MIDDLE = [
    "", "", "", "ba", "ca", "la", "li", "ma", "ne", "ri", "ro", "ti", "va", "lan",
    "mon", "ran", "ven", "ché", "lé", "gno", "bri", "del", "gou",
]  # fmt: skip
SYLLABLE_END = [
    "ard", "aud", "ault", "eau", "el", "elle", "er", "ert", "et", "ette", "ier", "in", "ine", "is",
    "on", "ot", "ou", "oux", "ville", "court", "mont", "lin", "ès", "ière", "ec", "ic", "an", "ay",
    "ey", "ois", "ac", "at", "enne", "egan", "aux",
]  # fmt: skip
# fmt: on
CITIES = [
    ("Paris", "75011", 30), ("Lyon", "69002", 14), ("Marseille", "13006", 8), ("Toulouse", "31000", 5),
    ("Nice", "06000", 4), ("Nantes", "44000", 4), ("Montpellier", "34000", 3), ("Strasbourg", "67000", 3),
    ("Bordeaux", "33000", 4), ("Lille", "59000", 3), ("Rennes", "35000", 2), ("Villeurbanne", "69100", 3),
    ("Boulogne-Billancourt", "92100", 3), ("Saint-Étienne", "42000", 2), ("Neuilly-sur-Seine", "92200", 2),
    ("Vénissieux", "69200", 1), ("Orléans", "45000", 1), ("Besançon", "25000", 1), ("Nîmes", "30000", 1),
]  # fmt: skip
STREETS = ["rue de la Paix", "avenue Jean-Jaurès", "rue Victor-Hugo", "boulevard Voltaire", "rue de la République",
           "place Bellecour", "rue des Écoles", "allée des Tilleuls", "chemin du Moulin", "rue Émile-Zola"]  # fmt: skip
MAIL_DOMAINS = ["gmail.com", "orange.fr", "free.fr", "hotmail.fr", "yahoo.fr", "laposte.net", "sfr.fr", "icloud.com"]
COPY_BATCH = 20_000
SESSION_GAP_DAYS = 28
SESSIONS_PER_PLAN = 4


def _ascii(text: str) -> str:
    folded = unicodedata.normalize("NFKD", text.lower().replace("ı", "i").replace("ø", "o"))
    return "".join(c for c in folded if c.isascii() and (c.isalnum() or c in ".-"))


def surname_tail(rng: random.Random) -> list[str]:
    """Generated rarer surnames, deterministic for a seed: about 30,000 distinct ones."""
    names = sorted({(s + m + e).capitalize() for s in SYLLABLE_START for m in SYLLABLE_MIDDLE for e in SYLLABLE_END})
    rng.shuffle(names)
    # A few compound names, as in any French register.
    compounds = [f"{names[i]}-{names[i + 1]}" for i in range(0, 2_000, 2)]
    particles = [f"{prefix} {names[i]}" for i, prefix in zip(range(2_000, 3_000), itertools.cycle(["Le", "De", "Du"]))]
    tail = names + compounds + particles
    rng.shuffle(tail)
    return tail


class Command(BaseCommand):
    help = "Seed the patient benchmarks' data (patients with realistic names, sessions); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--patients", type=int, default=100_000)
        parser.add_argument("--sessions", type=int, default=1_000_000)
        parser.add_argument("--practitioners", type=int, default=50)
        parser.add_argument("--seed", type=int, default=2026, help="random seed: the same data for the same seed")
        parser.add_argument("--force", action="store_true", help="seed a database whose name lacks 'bench'")

    def handle(self, *args: Any, **options: Any) -> None:
        name = connection.settings_dict["NAME"] or ""
        if "bench" not in name and not options["force"]:
            raise CommandError(f"Database {name!r} does not look like a benchmark database (use --force).")
        started = clock.monotonic()
        with transaction.atomic():
            # The calendar benchmark's staff: one location, its rooms, the practitioners, a front desk.
            _location, practitioners, front_desk = CalendarSeed()._staff(options["practitioners"])
        with transaction.atomic():
            added = self._patients(options["patients"], front_desk, options["seed"])
        self.stdout.write(f"patients: {added:,} added in {clock.monotonic() - started:.0f} s")
        with transaction.atomic():
            sessions = self._sessions(options["sessions"], practitioners, front_desk)
        with connection.cursor() as cursor:
            for model in (Patient, Consent, TreatmentPlan, TreatmentSession):
                cursor.execute(f"ANALYZE {connection.ops.quote_name(model._meta.db_table)}")
        self.stdout.write(
            self.style.SUCCESS(
                f"bench patients: {Patient.objects.count():,} patients ({added:,} new), "
                f"{TreatmentSession.objects.count():,} sessions ({sessions:,} new) over {len(practitioners)} "
                f"practitioners in {clock.monotonic() - started:.0f} s"
            )
        )

    # --- patients ------------------------------------------------------------------------

    def _patients(self, count: int, created_by: User, seed: int) -> int:
        existing = Patient.objects.count()
        missing = count - existing
        if missing <= 0:
            return 0
        rng = random.Random(f"{seed}:{existing}")  # noqa: S311 - synthetic data, not a secret  # not a secret  # nosec B311
        tail = surname_tail(rng)
        surnames = list(COMMON_SURNAMES) + tail
        common_total = sum(COMMON_SURNAMES.values())
        # Zipf over the tail (weight 1 / (rank + 100)), scaled so the common list keeps its share.
        tail_weights = [1 / (rank + 100) for rank in range(len(tail))]
        scale = common_total * (1 - COMMON_SHARE) / COMMON_SHARE / sum(tail_weights)
        cumulative = list(
            itertools.accumulate([*COMMON_SURNAMES.values(), *(w * scale for w in tail_weights)], initial=0.0)
        )[1:]
        female, male = list(FEMALE_NAMES), list(MALE_NAMES)
        female_cum = list(itertools.accumulate(FEMALE_NAMES.values()))
        male_cum = list(itertools.accumulate(MALE_NAMES.values()))
        city_cum = list(itertools.accumulate(c[2] for c in CITIES))

        given_columns = [
            "first_name", "last_name", "birth_date", "sex", "email", "phone", "address_line", "postal_code", "city",
            "preferred_language", "marketing_opt_in", "marketing_opt_in_at", "status", "archived_at",
            "archived_reason", "created_at", "created_by_id",
        ]  # fmt: skip
        fields = [
            f for f in Patient._meta.concrete_fields if not f.primary_key and not isinstance(f, models.GeneratedField)
        ]
        defaults = {
            f.column: f.get_db_prep_save(f.get_default(), connection) for f in fields if f.column not in given_columns
        }
        columns = given_columns + list(defaults)
        default_values = tuple(defaults.values())
        now = timezone.now()
        table = connection.ops.quote_name(Patient._meta.db_table)
        column_sql = ", ".join(connection.ops.quote_name(c) for c in columns)

        def rows(first: int, last: int) -> Any:
            for n, surname in zip(
                range(first, last + 1), rng.choices(surnames, cum_weights=cumulative, k=last - first + 1), strict=True
            ):
                is_female = rng.random() < FEMALE_SHARE
                first_name = rng.choices(
                    female if is_female else male, cum_weights=female_cum if is_female else male_cum
                )[0]
                city, postal_code, _ = rng.choices(CITIES, cum_weights=city_cum)[0]
                created_at = now - timedelta(days=rng.randrange(1, 8 * 365), minutes=rng.randrange(600))
                archived = rng.random() < 0.03
                marketing = rng.random() < 0.2
                email = (
                    f"{_ascii(first_name)}.{_ascii(surname)}{n}@{rng.choice(MAIL_DOMAINS)}"
                    if rng.random() < 0.92
                    else ""
                )
                # Unique mobile numbers: n spread over 10^8 by a multiplier prime to it.
                phone = f"+33{rng.choice('67')}{(n * 7_919_333) % 100_000_000:08d}" if rng.random() < 0.95 else ""
                yield (
                    first_name,
                    surname,
                    date(1940, 1, 1) + timedelta(days=rng.randrange(68 * 365)),
                    "female" if is_female else "male",
                    email,
                    phone,
                    f"{rng.randrange(1, 120)} {rng.choice(STREETS)}",
                    postal_code,
                    city,
                    "fr" if rng.random() < 0.9 else "en",
                    marketing,
                    created_at if marketing else None,
                    "archived" if archived else "active",
                    created_at + timedelta(days=rng.randrange(1, 400)) if archived else None,
                    "Moved away" if archived else "",
                    created_at,
                    created_by.pk,
                    *default_values,
                )

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")
            # The indexes that back no constraint are rebuilt once after the load.
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE tablename = %s AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
                [Patient._meta.db_table],
            )
            indexes = cursor.fetchall() if missing > 20_000 else []
            for index_name, _ in indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(index_name)}")
            with pgtrigger.ignore():
                # Sets pgtrigger's "ignore" flag for this transaction (until the block ends):
                # COPY goes to psycopg directly, past the wrapper that would set it.
                cursor.execute("SELECT 1")
                raw = cursor.cursor
                for start in range(existing + 1, count + 1, COPY_BATCH):
                    end = min(start + COPY_BATCH - 1, count)
                    with raw.copy(f"COPY {table} ({column_sql}) FROM STDIN") as copy:
                        for row in rows(start, end):
                            copy.write_row(row)
            # The foreign-key checks are deferred to commit, and an index cannot be built
            # over a table with checks pending: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            for _, definition in indexes:
                cursor.execute(definition)
        return missing

    # --- plans and sessions ------------------------------------------------------------

    def _sessions(self, count: int, practitioners: list[User], front_desk: User) -> int:
        bench_ids = [p.pk for p in practitioners]
        existing = TreatmentSession.objects.filter(practitioner_id__in=bench_ids).count()
        if existing >= count:
            return 0
        if existing:
            # Courses are laid out from the first one; topping up a partial load would
            # need its numbering: start again from an empty table instead.
            raise CommandError(f"{existing:,} bench sessions exist, fewer than {count:,}: reseed a fresh database.")
        plans = -(-count // SESSIONS_PER_PLAN)
        text = ConsentText.objects.filter(kind=ConsentText.Kind.MESOTHERAPY).order_by("-version").first()
        if text is None:
            text = ConsentText.objects.create(
                kind=ConsentText.Kind.MESOTHERAPY,
                version=1,
                title_en="Mesotherapy (benchmark)",
                body_en="Benchmark consent text.",
                title_fr="Mésothérapie (benchmark)",
                body_fr="Texte de consentement du benchmark.",
                published_by=front_desk,
            )
        now = timezone.now()
        params = {
            "practitioners": bench_ids,
            "n_practitioners": len(bench_ids),
            "plans": plans,
            "text": text.pk,
            "newest": now - timedelta(days=SESSION_GAP_DAYS * SESSIONS_PER_PLAN + 7),
            "span_days": 3 * 365,
        }
        q = connection.ops.quote_name
        consent_seq = f"pg_get_serial_sequence('{Consent._meta.db_table}', 'id')"
        plan_seq = f"pg_get_serial_sequence('{TreatmentPlan._meta.db_table}', 'id')"
        # One row per plan, ids drawn up front so the consent, the plan (its own root) and
        # its sessions can refer to each other. Patient j of the plan: a multiplicative
        # hash over the patients in id order, so courses spread over the whole register.
        plan_rows = f"""
            CREATE TEMP TABLE bench_course ON COMMIT DROP AS
            WITH ids AS (SELECT array_agg(id ORDER BY id) AS patients FROM {q(Patient._meta.db_table)})
            SELECT j, nextval({consent_seq}) AS consent_id, nextval({plan_seq}) AS plan_id,
                   ids.patients[1 + mod(j * 7919, cardinality(ids.patients))] AS patient_id,
                   (%(practitioners)s::bigint[])[1 + mod(j, %(n_practitioners)s)] AS practitioner_id,
                   %(newest)s::timestamptz - make_interval(days => ((%(plans)s - j) * %(span_days)s / %(plans)s)::int,
                                                           mins => mod(j * 37, 480)::int) AS starts_at
            FROM generate_series(1, %(plans)s::bigint) AS j, ids
        """  # noqa: S608 - model identifiers
        consents = {
            "id": "consent_id",
            "patient_id": "patient_id",
            "text_id": "%(text)s",
            "language": "'fr'",
            "typed_name": "'Bench patient ' || patient_id",
            "signature_file": "'bench/signature.png'",
            "signature_sha256": "repeat('0', 64)",
            "signed_at": "starts_at - interval '1 day'",
            "witness_id": "practitioner_id",
        }
        plans_given = {
            "id": "plan_id",
            "patient_id": "patient_id",
            "practitioner_id": "practitioner_id",
            "root_id": "plan_id",
            "status": "'completed'",
            "concern": "(ARRAY['fat_reduction','cellulite','skin_rejuvenation','hair_restoration'])[1 + mod(j, 4)]",
            "sessions_planned": str(SESSIONS_PER_PLAN),
            "min_interval_days": str(SESSION_GAP_DAYS),
            "consent_id": "consent_id",
            "consented_at": "starts_at - interval '1 day'",
            "created_at": "starts_at - interval '7 days'",
            "updated_at": "starts_at + interval '90 days'",
        }
        sessions_given = {
            "plan_id": "plan_id",
            "patient_id": "patient_id",
            "number": "s",
            "practitioner_id": "practitioner_id",
            "location_id": "%(location)s",
            "performed_at": "starts_at + make_interval(days => (s - 1) * " + str(SESSION_GAP_DAYS) + ")",
            "status": "'completed'",
            "completed_at": "starts_at + make_interval(days => (s - 1) * " + str(SESSION_GAP_DAYS) + ", mins => 40)",
        }
        params["location"] = practitioners[0].default_location_id
        params["count"] = count
        with pgtrigger.ignore(), connection.cursor() as cursor:
            cursor.execute(_bound(plan_rows, params))
            for model, given, source in (
                (Consent, consents, "bench_course"),
                (TreatmentPlan, plans_given, "bench_course"),
                (
                    TreatmentSession,
                    sessions_given,
                    "bench_course, generate_series(1, %(sessions_per_plan)s) AS s "
                    "WHERE (j - 1) * %(sessions_per_plan)s + s <= %(count)s",
                ),
            ):
                columns, expressions, extra = _defaults(model, {k: v for k, v in given.items() if k != "id"})
                if "id" in given:
                    columns.insert(0, q("id"))
                    expressions.insert(0, given["id"])
                params_all = params | extra | {"sessions_per_plan": SESSIONS_PER_PLAN}
                cursor.execute(
                    _bound(
                        f"INSERT INTO {q(model._meta.db_table)} ({', '.join(columns)}) "  # noqa: S608  # identifiers from the models  # nosec B608
                        f"SELECT {', '.join(expressions)} FROM {source}",
                        params_all,
                    )
                )
            return TreatmentSession.objects.filter(practitioner_id__in=bench_ids).count()
