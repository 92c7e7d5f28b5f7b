"""What runs around every request: rate limits, the permission table, input checks, errors, delivery.

The order in which they are registered is :func:`mapsvc.web.init_app`'s.
"""
