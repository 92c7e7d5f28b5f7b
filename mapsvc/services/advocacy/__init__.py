"""Advocacy evidence: the question answered from published counts, as tables, charts, maps and files."""
