"""What the pages and the command line share: intake, planning, advocacy, imports, roads, tiles, the demo.

A service takes its input as values (never ``flask.request``), reads and writes through
:mod:`mapsvc.store` and computes with :mod:`mapsvc.core`. It may use the app's context (its
settings, its store, the translations) but knows nothing of who sent a request or how.
"""
