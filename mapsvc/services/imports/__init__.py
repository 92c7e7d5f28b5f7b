"""Importing existing documentation: a CSV file's columns mapped (``mapping``), its rows stored (``run``)."""
