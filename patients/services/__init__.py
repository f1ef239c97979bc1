"""Writes for patients, in named parts: registry, history, consultation, consent, photos."""
