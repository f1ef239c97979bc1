"""Writes for treatments, in named parts: catalogue, plans, safety."""
