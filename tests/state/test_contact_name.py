"""A contact's display name is made in one place (state/model.py Contact.display_name)."""

import pytest

from crmsync.state.model import Contact


@pytest.mark.parametrize(
    ("first", "last", "want"),
    [
        ("Ada", "Lovelace", "Ada Lovelace"),
        ("Ada", None, "Ada"),
        (None, "Lovelace", "Lovelace"),
        ("  ", "Lovelace", "Lovelace"),
        (None, None, "contact 003A"),
        ("", " ", "contact 003A"),
    ],
)
def test_a_contact_reads_as_first_and_last_name_or_its_id(first, last, want):
    assert Contact("salesforce", "003A", None, first_name=first, last_name=last).name == want


def test_a_report_can_say_something_else_for_a_contact_without_a_name():
    c = Contact("salesforce", "003A", None, email="ada@example.com")
    assert c.display_name(fallback="a contact without a name") == "a contact without a name"
    assert Contact("hubspot", "9", None, first_name="Ada").display_name(fallback="x") == "Ada"
