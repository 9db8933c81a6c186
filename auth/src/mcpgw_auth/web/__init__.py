"""Thin HTTP layer: parse, call the protocol core, render. Errors become responses in web/errors.py."""
