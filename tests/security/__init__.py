"""Security tests: what a hostile account, a phishing link or a crawler must not be able to do.

One module per surface (uploads, escaping, sign-in, tiles and anonymous reads). Each test is
an attack that was once possible, or would be if the fix regressed, and asserts that it
achieves nothing the attacker could see. New findings get a test here, beside their kin.
"""
