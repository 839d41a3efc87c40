"""Bouncing contacts: CRM bounces, hard vs soft, syntax, role addresses, deliverability."""

from __future__ import annotations

import pytest

from crmsync.rules import bouncing_contacts
from crmsync.rules.bouncing_contacts import bounce_count, smtp_status, syntax_problem
from crmsync.state.model import HygieneStatus, Severity

from .builders import contact, day_ago, days_ago, flags, opp, role, run, settings, view

RULE = "bouncing_contact"


def one(result):
    found = flags(result, RULE)
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize(
    ("case", "kw", "kind", "bouncing"),
    [
        (
            "CRM hard bounce, enhanced status",
            dict(email_bounced=True, bounce_reason="550 5.1.1 <x@acme.com>: user unknown"),
            "hard_bounce",
            True,
        ),
        (
            "CRM hard bounce, no reason text",
            dict(email_bounced=True, bounce_reason=None),
            "hard_bounce",
            True,
        ),
        (
            "CRM hard bounce, basic code only",
            dict(email_bounced=True, bounce_reason="550 mailbox unavailable"),
            "hard_bounce",
            True,
        ),
        (
            "soft bounce once",
            dict(email_bounced=True, bounce_reason="452 4.2.2 mailbox full"),
            "soft_bounce",
            False,
        ),
        (
            "soft bounce twice",
            dict(email_bounced=True, bounce_reason="4.2.2 mailbox full; bounced 2 times"),
            "soft_bounce",
            False,
        ),
        (
            "soft bounce three times",
            dict(email_bounced=True, bounce_reason="4.2.2 mailbox full; bounced 3 times"),
            "repeated_soft_bounce",
            True,
        ),
        (
            "soft bounce count phrasing",
            dict(email_bounced=True, bounce_reason="421 4.4.2 timeout (5 bounces)"),
            "repeated_soft_bounce",
            True,
        ),
        (
            "bounce reason left over, not bounced",
            dict(email_bounced=False, bounce_reason="550 5.1.1"),
            None,
            False,
        ),
        ("no email", dict(email=None), "no_email", True),
        ("blank email", dict(email="   "), "no_email", True),
        ("two @ signs", dict(email="ada@@acme.com"), "invalid_address", True),
        ("no dot in domain", dict(email="ada@acme"), "invalid_address", True),
        ("spaces inside", dict(email="ada lovelace@acme.com"), "invalid_address", True),
        ("reserved .test domain", dict(email="ada@acme.test"), "invalid_address", True),
        ("IDN domain", dict(email="jörg@bücher.de"), None, False),
        ("IDN local part and domain", dict(email="用户@例子.广告"), None, False),
        ("punycode domain", dict(email="joerg@xn--bcher-kva.de"), None, False),
        ("plus addressing", dict(email="ada+crm@acme.com"), None, False),
        ("subdomain", dict(email="ada@uk.acme.co.uk"), None, False),
        ("role address info@", dict(email="info@acme.com"), "role_address", False),
        ("role address Sales@ any case", dict(email="Sales@acme.com"), "role_address", False),
        ("role address with tag", dict(email="support+emea@acme.com"), "role_address", False),
        (
            "personal address that starts like a role",
            dict(email="infosec.lead@acme.com"),
            None,
            False,
        ),
    ],
)
def test_detection(case, kw, kind, bouncing):
    result = run(view([contact("003A", **kw)]))
    f = one(result)
    if kind is None:
        assert f is None, case
        assert result.contact_status["003A"].status is HygieneStatus.OK
        return
    assert f is not None, case
    assert f.evidence["kind"] == kind, case
    assert f.evidence["bouncing"] is bouncing
    expected = HygieneStatus.BOUNCING if bouncing else HygieneStatus.OK
    assert result.contact_status["003A"].status is expected
    if not bouncing:
        assert f.severity is Severity.INFO


def test_notes_keep_the_contact_active_and_engaged():
    cs = [
        contact("003A", email="info@acme.com"),
        contact("003B", email_bounced=True, bounce_reason="4.2.2 mailbox full"),
        contact("003C"),
    ]
    result = run(view(cs))
    assert (result.coverage.stakeholders, result.coverage.engaged) == (3, 3)


def test_hard_bounce_outranks_other_findings_on_the_same_address():
    f = one(
        run(view([contact("003A", email="info@acme", email_bounced=True, bounce_reason="5.1.1")]))
    )
    assert f.evidence["kind"] == "hard_bounce"
    assert f.evidence["also"] == ["invalid_address"]


def test_bounced_but_active_since_is_still_bouncing_but_less_urgent():
    base = dict(email_bounced=True, bounce_reason="550 5.1.1", bounced_at=days_ago(40))
    v_roles = dict(opportunities=[opp()], roles=[role("003A", "Champion")])
    quiet = one(run(view([contact("003A", last_activity_at=days_ago(45), **base)], **v_roles)))
    since = one(run(view([contact("003A", last_activity_at=days_ago(3), **base)], **v_roles)))
    assert quiet.evidence["active_since"] is None
    assert since.evidence["active_since"] == day_ago(3).isoformat()
    assert since.severity.rank == quiet.severity.rank - 1
    assert "Activity has been logged since then" in since.explanation
    assert "still needs fixing" in since.explanation


def test_activity_on_the_bounce_day_is_not_active_since():
    c = contact(
        "003A",
        email_bounced=True,
        bounce_reason="5.1.1",
        bounced_at=days_ago(3),
        last_activity_at=days_ago(3),
    )
    assert one(run(view([c]))).evidence["active_since"] is None


def test_soft_bounce_threshold_is_a_setting():
    c = contact("003A", email_bounced=True, bounce_reason="4.2.2 mailbox full; bounced 2 times")
    assert one(run(view([c]))).evidence["kind"] == "soft_bounce"
    s = settings(bouncing_contact={"soft_bounce_threshold": 2})
    assert one(run(view([c]), s)).evidence["kind"] == "repeated_soft_bounce"


def test_role_address_list_is_a_setting():
    c = contact("003A", email="events@acme.com")
    assert one(run(view([c]))) is None
    s = settings(bouncing_contact={"role_addresses": ["events"]})
    assert one(run(view([c]), s)).evidence["kind"] == "role_address"


def test_test_domains_allowed_by_setting():
    c = contact("003A", email="ada@acme.test")
    s = settings(bouncing_contact={"allow_test_domains": True})
    assert one(run(view([c]), s)) is None


def test_deliverability_check_is_off_by_default_and_uses_the_injected_resolver():
    asked: list[str] = []

    def fake(domain: str) -> str | None:
        asked.append(domain)
        return "The domain name acme.com does not accept email." if domain == "acme.com" else None

    c = contact("003A")
    assert one(run(view([c]), domain_check=fake)) is None
    assert asked == []
    s = settings(bouncing_contact={"check_deliverability": True})
    f = one(run(view([c, contact("003B", email="b@globex.com")]), s, domain_check=fake))
    assert f.subject_id == "003A" and f.evidence["kind"] == "undeliverable_domain"
    assert sorted(asked) == ["acme.com", "globex.com"]
    # On, but no resolver given: skipped, never a network call from rules.
    assert one(run(view([c]), s)) is None


@pytest.mark.parametrize(
    ("roles", "renewal_days", "severity"),
    [
        ((), None, Severity.LOW),
        (("Champion",), None, Severity.MEDIUM),
        ((), 30, Severity.MEDIUM),
        (("Champion",), 30, Severity.HIGH),
    ],
)
def test_severity(roles, renewal_days, severity):
    close = day_ago(-renewal_days) if renewal_days is not None else day_ago(-400)
    v = view(
        [contact("003A", email_bounced=True, bounce_reason="5.1.1")],
        opportunities=[opp("006A", close_date=close)],
        roles=[role("003A", r) for r in roles],
    )
    assert one(run(v)).severity is severity


@pytest.mark.parametrize(
    ("reason", "status", "cls"),
    [
        ("550 5.1.1 User unknown", "5.1.1", "hard"),
        ("smtp; 5.7.1 rejected", "5.7.1", "hard"),
        ("452 4.2.2 Mailbox full", "4.2.2", "soft"),
        ("421 Try again later", "421", "soft"),
        ("554 spam", "554", "hard"),
        ("Mailbox does not exist", None, None),
        ("version 1.2.3 of the server", None, None),
        ("", None, None),
        (None, None, None),
    ],
)
def test_smtp_status(reason, status, cls):
    assert smtp_status(reason) == (status, cls)


@pytest.mark.parametrize(
    ("reason", "n"),
    [
        ("bounced 3 times", 3),
        ("3 bounces", 3),
        ("bounce count: 4", 4),
        ("(2x) 4.2.2", 2),
        ("4.2.2 mailbox full", None),
        (None, None),
    ],
)
def test_bounce_count(reason, n):
    assert bounce_count(reason) == n


@pytest.mark.parametrize(
    "email",
    [
        "a@acme.com",
        "a.b@acme.co.uk",
        "a_b-c+d@x-y.io",
        "A@ACME.COM",
        "a..b@acme.com",
        ".a@acme.com",
        "a.@acme.com",
        "a@-acme.com",
        "a@acme-.com",
        "a@acme..com",
        "a@acme.c",
        "a@acme.123",
        "a@localhost",
        "a@acme.local",
        "a@acme.test",
        "a@acme.invalid",
        "a@xn--bcher-kva.de",
        "a@xn--zz.com",
        "a@ab--cd.com",
        "x" * 65 + "@acme.com",
        "a@" + "b" * 64 + ".com",
        "jörg@bücher.de",
        '"quoted"@acme.com',
        "a@[127.0.0.1]",
        "a b@acme.com",
    ],
)
def test_fast_syntax_path_agrees_with_email_validator(email):
    assert (syntax_problem(email) is None) == (bouncing_contacts._full_check(email, False) is None)


class FakeResolver:
    """Stands in for dnspython's Resolver: answers from a table, counts questions."""

    def __init__(self, mx):
        self.mx = mx
        self.asked = []

    def resolve(self, domain, rdtype):
        import dns.resolver

        self.asked.append((domain, rdtype))
        if domain not in self.mx:
            raise dns.resolver.NXDOMAIN()
        if rdtype != "MX" or not self.mx[domain]:
            raise dns.resolver.NoAnswer()

        class Rec:
            def __init__(self, host):
                self.preference, self.exchange = 10, host

        return [Rec(h) for h in self.mx[domain]]


def test_dns_domain_check_with_a_fake_resolver_is_cached():
    fake = FakeResolver({"acme.com": ["mx.acme.com."], "xn--bcher-kva.de": ["mx.b.de."]})
    check = bouncing_contacts.dns_domain_check(resolver=fake)
    assert check("acme.com") is None
    assert check("acme.com") is None
    assert check("bücher.de") is None
    assert "does not exist" in check("nowhere.example")
    assert fake.asked.count(("acme.com", "MX")) == 1
    assert ("xn--bcher-kva.de", "MX") in fake.asked


def test_dns_resolver_errors_are_unknown_not_bouncing():
    class Broken:
        def resolve(self, domain, rdtype):
            raise RuntimeError("socket exploded")

    assert bouncing_contacts.dns_domain_check(resolver=Broken())("acme.com") is None


# ---------------------------------------------------------------- reason codes (HubSpot)


@pytest.mark.parametrize(
    ("reason", "kind", "bouncing"),
    [
        # HubSpot's hs_email_hard_bounce_reason_enum options (api-facts §4), as the
        # connector passes them: the code, then the mail server's answer when there is one
        ("UNKNOWN_USER", "hard_bounce", True),
        ("UNKNOWN_USER: 550 5.1.1 user unknown", "hard_bounce", True),
        ("MAILBOX_FULL", "soft_bounce", False),
        ("MAILBOX_FULL: 552 5.2.2 mailbox full", "soft_bounce", False),  # the code wins over 5.x
        ("MAILBOX_FULL: 452 4.2.2 mailbox full; bounced 3 times", "repeated_soft_bounce", True),
        ("SPAM: 550 5.7.1 rejected as spam", "refused_by_recipient", False),
        ("POLICY", "refused_by_recipient", False),
        ("CONTENT", "refused_by_recipient", False),
        ("OTHER", "unexplained_bounce", True),
        # not a known code: read as before (no status -> the CRM only marks hard bounces)
        ("MAILBOX_DISABLED", "hard_bounce", True),
        ("Spam filter said no", "hard_bounce", True),
    ],
)
def test_reason_codes_decide_what_a_bounce_means(reason, kind, bouncing):
    result = run(view([contact("003A", email_bounced=True, bounce_reason=reason)]))
    f = one(result)
    assert f.evidence["kind"] == kind, reason
    assert f.evidence["bouncing"] is bouncing, reason
    expected = HygieneStatus.BOUNCING if bouncing else HygieneStatus.OK
    assert result.contact_status["003A"].status is expected
    assert (f.severity is Severity.INFO) is (not bouncing)


def test_a_refusal_tells_the_account_manager_to_check_the_sending_not_the_contact():
    f = one(run(view([contact("003A", first_name="Ada", last_name="Lovelace",
                              email="ada@acme.com", email_bounced=True,
                              bounce_reason="SPAM: 550 5.7.1 rejected")])))
    assert f.explanation.startswith("Mail to Ada Lovelace at ada@acme.com was refused as spam")
    assert "Check your sending, not the contact" in f.explanation
    assert f.evidence["reason_code"] == "SPAM"
    policy = one(run(view([contact("003A", email_bounced=True, bounce_reason="POLICY")])))
    assert "security policy" in policy.explanation and "SPF, DKIM or DMARC" in policy.explanation


def test_a_refused_contact_stays_active_and_engaged():
    cs = [contact("003A", email_bounced=True, bounce_reason="SPAM"), contact("003B")]
    result = run(view(cs))
    assert (result.coverage.stakeholders, result.coverage.engaged) == (2, 2)


def test_bounce_reasons_are_a_setting():
    v = view([contact("003A", email_bounced=True, bounce_reason="SPAM")])
    assert one(run(v)).evidence["kind"] == "refused_by_recipient"
    s = settings(bouncing_contact={"bounce_reasons": {"SPAM": "gone", "MAILBOX_GONE": "gone"}})
    assert one(run(v, s)).evidence["kind"] == "hard_bounce"
    # listed codes override the defaults; the others keep theirs
    other = view([contact("003A", email_bounced=True, bounce_reason="OTHER")])
    assert one(run(other, s)).evidence["kind"] == "unexplained_bounce"
    gone = view([contact("003A", email_bounced=True, bounce_reason="MAILBOX_GONE: 550 5.2.1")])
    assert one(run(gone, s)).evidence["kind"] == "hard_bounce"


@pytest.mark.parametrize("bad", [{"SPAM": "ignore"}, {"spam filter": "sender"}])
def test_bounce_reasons_name_a_code_and_a_known_meaning(bad):
    with pytest.raises(ValueError, match="bounce_reasons"):
        settings(bouncing_contact={"bounce_reasons": bad})
