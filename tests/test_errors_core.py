"""Errors: one body for every error answered as JSON, and a status changed only on a copy."""

from __future__ import annotations

import pytest

from mapsvc.core.errors import InvalidInput, MapsvcError, NotFound
from mapsvc.web.hooks.inputs import query_parameters


def test_the_body_names_the_field_only_when_there_is_one():
    assert InvalidInput("limit must be a whole number", "limit").to_dict() == {
        "error": "limit must be a whole number",
        "field": "limit",
    }
    assert NotFound("no event with that id").to_dict() == {"error": "no event with that id"}


def test_with_status_copies_and_leaves_the_error_as_raised():
    raised = InvalidInput("limit must be a whole number", "limit")

    copy = raised.with_status(400)

    assert (type(copy), copy.message, copy.field, copy.status, str(copy)) == (
        InvalidInput,
        "limit must be a whole number",
        "limit",
        400,
        "limit must be a whole number",
    )
    assert copy is not raised and raised.status == 422 and InvalidInput.status == 422


def test_a_bad_query_parameter_answers_400_and_the_parsers_error_stays_422():
    raised = InvalidInput("limit must be a whole number", "limit")

    with pytest.raises(InvalidInput) as caught, query_parameters():
        raise raised

    assert caught.value.status == 400 and caught.value.to_dict() == raised.to_dict()
    assert raised.status == 422 and caught.value.__cause__ is raised


def test_other_errors_pass_a_query_parameters_block_unchanged():
    missing = NotFound("no collection with that id")

    with pytest.raises(MapsvcError) as caught, query_parameters():
        raise missing

    assert caught.value is missing and missing.status == 404
