"""What runs around every request, and how requests take turns.

Rate limits and their counters, burst holds, the permission table, input checks, error answers,
how answers leave (headers, compression, caching), and the urgency that lets a report run before
reads. The order in which the hooks are registered is :func:`mapsvc.web.init_app`'s.
"""
