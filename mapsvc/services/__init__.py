"""The service's rules, for the pages, the API and the command line: intake, planning, advocacy, imports, tiles.

A service takes its input as values (never ``flask.request``), reads and writes through
:mod:`mapsvc.store` and computes with :mod:`mapsvc.core`. It may use the app's context (its
settings, its store, the translations) but knows nothing of who sent a request or how.
"""
