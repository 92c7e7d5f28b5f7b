"""Pure functions and values: fuzzing, decay, policies, counts, routing; no Flask, no database."""
