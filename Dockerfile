# MesoClinic application image: one image for the web (gunicorn), worker and beat
# (Celery) processes and the one-shot migrator; docker-compose.yml picks the command.
#
#   docker build -t mesoclinic:latest .
#
# Configuration comes from the environment at run time (see .env.example); nothing
# secret is baked into the image.

FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Shared libraries and fonts WeasyPrint needs to render PDFs; gettext provides
# msgfmt for `compilemessages` below.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        libpango-1.0-0 \
        libpangoft2-1.0-0 \
        libharfbuzz-subset0 \
        fonts-dejavu-core \
        gettext \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first, so that code changes do not reinstall them. pyproject.toml
# declares no importable packages (`packages = []`): `pip install .` installs the
# runtime dependencies only (not the dev extra); the code runs from /app.
COPY pyproject.toml ./
RUN pip install .

# The application code, copied directory by directory so that a local .env,
# .venv, var/ (embedded database, mail, cache) or .git never end up in the image.
COPY manage.py ./
COPY mesoclinic ./mesoclinic
COPY patients ./patients
COPY treatments ./treatments
COPY aftercare ./aftercare
COPY templates ./templates
COPY static ./static
COPY locale ./locale

# Paths inside the container. STATIC_ROOT is filled at build time and must not be
# changed at run time (WhiteNoise serves the manifest built here). Everything the
# processes write lives under /data, owned by the unprivileged user.
ENV PYTHONPATH=/app \
    DJANGO_SETTINGS_MODULE=mesoclinic.settings \
    STATIC_ROOT=/app/staticfiles \
    VAR_DIR=/data/var \
    MEDIA_ROOT=/data/media \
    PRIVATE_MEDIA_ROOT=/data/private

# Compile translations and collect static files. Settings refuse to load without
# SECRET_KEY when DEBUG is off, and would start the embedded PostgreSQL without
# DATABASE_URL; both are throwaway values scoped to this one command (not kept in
# the image). Importing settings does not connect to the database.
RUN SECRET_KEY=build-only-not-secret-0123456789abcdefghijklmnopqrstuvwxyz \
    DATABASE_URL=postgres://x@localhost/x \
    DEBUG=false \
    VAR_DIR=/tmp/build-var \
    sh -c 'python manage.py compilemessages -v 0 \
        && python manage.py collectstatic --no-input -v 0' \
    && rm -rf /tmp/build-var

# Unprivileged runtime user. The code and static files stay owned by root (read-only
# for the app); /data/* is writable. A named volume mounted on /data/private starts
# out with this ownership.
RUN groupadd --system --gid 10001 mesoclinic \
    && useradd --system --uid 10001 --gid mesoclinic --create-home --home-dir /home/mesoclinic \
        --shell /usr/sbin/nologin mesoclinic \
    && mkdir -p /data/var /data/media /data/private \
    && chown -R mesoclinic:mesoclinic /data \
    && chmod 0750 /data/private
USER mesoclinic

EXPOSE 8000

# Healthy when gunicorn answers the login page. http.client rather than
# urllib.request.urlopen: it does not follow redirects, so a 301 to https (when
# BEHIND_PROXY is off) counts as "up" instead of being followed to the outside.
# The Host header is the first ALLOWED_HOSTS entry, so Django does not reject it.
# docker-compose.yml replaces it for worker (celery ping) and turns it off for beat and migrate.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import http.client, os, sys; h = os.environ.get('ALLOWED_HOSTS', 'localhost').split(',')[0].strip().lstrip('.'); h = 'localhost' if h in ('', '*') else h; c = http.client.HTTPConnection('127.0.0.1', 8000, timeout=4); c.request('GET', '/accounts/login/', headers={'Host': h, 'X-Forwarded-Proto': 'https'}); sys.exit(0 if c.getresponse().status < 400 else 1)"]

CMD ["gunicorn", "mesoclinic.wsgi", "-k", "gthread", "--threads", "8", "-w", "3", \
     "-b", "0.0.0.0:8000", "--access-logfile", "-"]
