"""Who may use a form: public, any signed-in user, or the chosen roles and users (guardian), superusers
always; /forms/ lists exactly the forms a person may use."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser, Group, User

from forms_app.models import FormAccess, FormDefinition
from forms_app.services import form_access_holders, form_can_use, form_grant_access, forms_usable_by
from tests.forms_app.conftest import FormFactory


@pytest.fixture
def forms(make_form: FormFactory, managers: Group) -> dict[str, FormDefinition]:
    made = {
        "public": make_form([], process="test-echo", slug="public", access=FormAccess.PUBLIC),
        "authenticated": make_form([], process="test-steps", slug="authenticated", access=FormAccess.AUTHENTICATED),
        "restricted": make_form([], process="order-processing", slug="restricted", access=FormAccess.RESTRICTED),
        "inactive": make_form([], process="data-sync", slug="inactive", access=FormAccess.PUBLIC, is_active=False),
    }
    form_grant_access(made["restricted"], groups=[managers])
    return made


@pytest.mark.parametrize(("who", "usable"), [
    ("anonymous", {"public"}),
    ("outsider", {"public", "authenticated"}),
    ("manager", {"public", "authenticated", "restricted"}),
    ("admin_user", {"public", "authenticated", "restricted"}),
])
def test_each_person_may_use_the_forms_their_access_allows(
    request: pytest.FixtureRequest, forms: dict[str, FormDefinition], who: str, usable: set[str]
) -> None:
    user = AnonymousUser() if who == "anonymous" else request.getfixturevalue(who)

    assert {slug for slug, form in forms.items() if form_can_use(user, form)} == usable
    assert set(forms_usable_by(user).values_list("slug", flat=True)) == usable


def test_a_disabled_account_is_treated_as_signed_out(forms: dict[str, FormDefinition], manager: User) -> None:
    manager.is_active = False

    assert {slug for slug, form in forms.items() if form_can_use(manager, form)} == {"public"}


def test_a_user_given_a_restricted_form_may_use_it_and_loses_it_when_taken_away(
    forms: dict[str, FormDefinition], outsider: User, managers: Group
) -> None:
    restricted = forms["restricted"]
    form_grant_access(restricted, users=[outsider])
    assert form_can_use(User.objects.get(pk=outsider.pk), restricted)
    assert form_access_holders(restricted) == ([outsider], [managers])

    form_grant_access(restricted, users=[], groups=[])

    assert not form_can_use(User.objects.get(pk=outsider.pk), restricted)
    assert form_access_holders(restricted) == ([], [])


def test_a_global_use_form_permission_opens_every_restricted_form(forms: dict[str, FormDefinition],
                                                                  outsider: User) -> None:
    from django.contrib.auth.models import Permission

    outsider.user_permissions.add(Permission.objects.get(codename="use_form"))
    outsider = User.objects.get(pk=outsider.pk)

    assert form_can_use(outsider, forms["restricted"])
    assert "restricted" in set(forms_usable_by(outsider).values_list("slug", flat=True))
