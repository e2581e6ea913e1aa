import pytest

from core.errors import UserError
from core.jobs import validate_concept


@pytest.mark.parametrize(
    ("concept", "fragment"),
    [
        ("", "empty"),
        ("   \n\t ", "empty"),
        (None, "empty"),
        ("x" * 2001, "limit is 2,000"),
        ("a song\x00 with a NUL", "control"),
        ("bell\x07", "control"),
        ("rtl \u202e override", "control"),
    ],
)
def test_bad_concepts_get_a_clear_message(concept, fragment):
    with pytest.raises(UserError, match=fragment):
        validate_concept(concept, 2000)


def test_a_good_concept_is_trimmed_and_keeps_newlines():
    assert (
        validate_concept("  a jazz ballad\nabout a lighthouse  ", 2000) == "a jazz ballad\nabout a lighthouse"
    )


def test_exactly_the_limit_is_allowed():
    assert len(validate_concept("y" * 2000, 2000)) == 2000
