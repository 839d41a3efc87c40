"""The CRM-neutral org: owners, accounts, people, opportunities, planted cases.

One `World` draws everything from one `random.Random(seed)`; the Salesforce
and HubSpot renderers only reshape what it drew and never draw themselves, so
the same seed gives the same people and situations in both CRMs, whichever
CRMs are rendered.

Known proportions come from shuffled blocks rather than coin flips: every run
of `len(block)` accounts (or filler contacts) holds exactly the block's mix
(`SITUATION_BLOCK`, `TIER_BLOCK`, `FILLER_BLOCK`, `INACTIVE_OWNER_BLOCK`), in a
seeded order. A 50-account org therefore holds every account situation.

Every day count the rules compare with a threshold (engaged 90 days, the tier
windows 60/120/180/365, renewal 120, won-role age 365) is kept at least 3 days
away from it (`snap`), so the expected results in the manifest do not depend
on time-of-day, date-vs-datetime or `<` vs `<=` choices of the rules.

The manifest (`cases.Cases`) is computed from what was drawn, not copied from
the plan (see cases.py).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from . import words as W
from .cases import ENGAGED_DAYS, REQUIRED_ROLES, ROLE_WON_DAYS, Cases, evaluate
from .clock import DAY_MS, day_str
from .model import Account, Opportunity, Owner, Person, Role, Task

EDGES_DAYS = (60, 90, 120, 180, 365)
OTHER_CORE_ROLES = (
    "Executive Sponsor",
    "Decision Maker",
    "Technical Buyer",
    "Influencer",
    "Evaluator",
    "Business User",
    None,
)

# One account situation per slot; 40 accounts hold exactly this mix.
SITUATION_BLOCK = {
    "healthy": 22,
    "healthy_lapsed_role": 1,  # plus a bouncing ex-champion whose role lapsed: NOT departed
    "few_engaged": 5,  # 1-2 engaged contacts
    "no_economic_buyer": 2,
    "no_champion": 2,
    "departed_bouncing": 2,  # champion's email hard-bounces
    "departed_title": 2,  # champion's title says they left
    "departed_email_domain": 2,  # champion's email moved to another domain
    "departed_moved": 2,  # champion bounces and reappears at another account
}
TIER_BLOCK = {"strategic": 2, "growth": 6, "maintenance": 8, "none": 4}
TIER_SF = {"strategic": "Strategic", "growth": "Growth", "maintenance": "Maintenance", "none": None}
TIER_HS = {"strategic": "tier_1", "growth": "tier_2", "maintenance": "tier_3", "none": None}
# One filler contact per slot; 200 filler contacts hold exactly this mix.
FILLER_BLOCK = {
    "clean": 182,
    "hard_bounce": 4,
    "soft_bounce": 2,
    "malformed_email": 2,
    "missing_email": 2,
    "role_address": 1,
    "unicode_name": 1,
    "opted_out": 4,
    "personal_email": 2,
}
INACTIVE_OWNER_BLOCK = {"active": 39, "inactive": 1}

# Filler activity: (weight, lo, hi) days ago, None = never; ranges avoid the edges
ACTIVITY_BUCKETS = (
    (30, 1, 57),
    (10, 63, 87),
    (10, 93, 117),
    (10, 123, 177),
    (12, 183, 362),
    (13, 368, 900),
    (15, None, None),
)
IDLE_BUCKETS = tuple(b for b in ACTIVITY_BUCKETS if b[1] is None or b[1] > ENGAGED_DAYS)


def snap(days: int) -> int:
    """Move a day count off every rule threshold (see module docstring)."""
    for e in EDGES_DAYS:
        if e - 2 <= days <= e + 2:
            return e + 3
    return days


class Schedule:
    """Deals labels from seeded shuffled blocks: exact proportions per block."""

    def __init__(self, rng: random.Random, block: dict[str, int]) -> None:
        self._rng = rng
        self._block = [k for k, n in block.items() for _ in range(n)]
        self._left: list[str] = []

    def next(self) -> str:
        if not self._left:
            self._left = self._block[:]
            self._rng.shuffle(self._left)
        return self._left.pop()


class World:
    """Draws the org account by account (see module docstring)."""

    def __init__(
        self,
        seed: int,
        accounts: int,
        contacts_per_account: float,
        as_of_ms: int,
        bad_records: bool = False,
    ) -> None:
        if accounts < 1:
            raise ValueError("accounts must be at least 1")
        if contacts_per_account <= 0:
            raise ValueError("contacts_per_account must be positive")
        self.rng = random.Random(seed)
        self.accounts = accounts
        self.mean_contacts = contacts_per_account
        self.as_of_ms = as_of_ms
        self.today = as_of_ms // DAY_MS  # epoch day of as_of
        self.bad_records = bad_records
        self.cases = Cases()
        self.counters = {"contact": 0, "opportunity": 0, "role": 0, "task": 0}
        self.situations = Schedule(self.rng, SITUATION_BLOCK)
        self.tiers = Schedule(self.rng, TIER_BLOCK)
        self.fillers = Schedule(self.rng, FILLER_BLOCK)
        self.inactive = Schedule(self.rng, INACTIVE_OWNER_BLOCK)
        self._names = len(W.COMPANY_FIRST) * len(W.COMPANY_SECOND) * len(W.COMPANY_FORM)
        self._name_offset = self.rng.randrange(self._names)
        self._name_step = 7919  # prime, coprime to the name-space size: a bijection
        self._pending_moves: dict[int, list[tuple[Person, int]]] = {}
        self._core_roles: list[tuple[Person, str | None]] = []
        self._global_emails: set[str] = set()
        self._unicode_next = 0
        self.owners = self._draw_owners()
        self.active_owners = [o.k for o in self.owners if o.active]

    # ------------------------------------------------------------------ helpers

    def _pick(self, seq: Any) -> Any:
        return seq[int(self.rng.random() * len(seq))]

    def _between(self, lo: int, hi: int) -> int:
        return lo + int(self.rng.random() * (hi - lo + 1))

    def _at(self, days_ago: int, lo_h: int = 0, hi_h: int = 24) -> int:
        """Epoch ms on the day `days_ago` before as_of's day, between lo_h and hi_h o'clock."""
        frac = lo_h * 3_600_000 + int(self.rng.random() * (hi_h - lo_h) * 3_600_000)
        return (self.today - days_ago) * DAY_MS + frac

    def _modified(self, lo: int, b: int | None = None, c: int | None = None) -> int:
        """A modification time after lo, b and c (when given) and before as_of."""
        if b is not None and b > lo:
            lo = b
        if c is not None and c > lo:
            lo = c
        return lo + int(self.rng.random() * max(1, self.as_of_ms - lo - 60_000))

    def company(self, i: int) -> tuple[str, str, bool]:
        """Name, domain and has-non-ASCII of account i: a bijection, so distinct and stable."""
        k = (self._name_offset + i * self._name_step) % self._names
        k, form = divmod(k, len(W.COMPANY_FORM))
        first, second = divmod(k, len(W.COMPANY_SECOND))
        (disp, slug), word2, (legal, tld) = (
            W.COMPANY_FIRST[first],
            W.COMPANY_SECOND[second],
            W.COMPANY_FORM[form],
        )
        name, domain = f"{disp} {word2} {legal}", f"{slug}{word2.lower()}.{tld}"
        lap = i // self._names  # more accounts than names: number the later rounds
        if lap:
            name, domain = f"{name} {lap + 1}", f"{slug}{word2.lower()}{lap + 1}.{tld}"
        return name, domain, slug != disp.lower()

    # ------------------------------------------------------------------ owners

    def _draw_owners(self) -> list[Owner]:
        count = max(3, round(self.accounts / 25))
        owners = []
        for k in range(count):
            first, last = self._pick(W.FIRST_NAMES), self._pick(W.LAST_NAMES)
            email = f"{first}.{last}{k + 1}@sandbox.test".lower()
            created = self._at(self._between(400, 2500))
            owners.append(Owner(k, first, last, email, k != count - 1, created))
        return owners

    # ------------------------------------------------------------------ accounts

    def iter_accounts(self) -> Iterator[Account]:
        for i in range(self.accounts):
            yield self._account(i)
        if self.bad_records:
            yield self._bad_account(self.accounts)

    def _account(self, i: int) -> Account:
        rng = self.rng
        situation, tier = self.situations.next(), self.tiers.next()
        if situation == "departed_moved" and i == self.accounts - 1:
            situation = "departed_bouncing"  # nowhere later to move to
        name, domain, odd = self.company(i)
        inactive = self.inactive.next() == "inactive"
        owner = self.owners[-1].k if inactive else self._pick(self.active_owners)
        created = self._at(self._between(1900, 3200))  # before any of its people and deals
        renewal = None
        if tier != "none" or rng.random() < 0.5:
            renewal = self.today + snap(self._between(5, 700))
        acc = Account(
            i=i,
            name=name,
            domain=domain,
            website=self._website(domain),
            owner=owner,
            tier=tier,
            situation=situation,
            renewal_day=renewal,
            industry=int(rng.random() * len(W.INDUSTRIES)),
            employees=self._pick((12, 45, 80, 150, 320, 750, 1200, 4800, 12000, 55000)),
            created_ms=created,
            modified_ms=self._modified(created),
        )
        emails: set[str] = set()
        core = self._core(acc, emails)
        total = max(len(core), self._contact_count())
        fillers = [self._filler(acc, emails) for _ in range(total - len(core))]
        acc.people = core + fillers
        for moved, old_n in self._pending_moves.pop(i, ()):
            acc.people.append(self._arrive(acc, moved, old_n, emails))
        self._opportunities(acc, fillers)
        self._task(acc)
        if inactive:
            self.cases.add(self.cases.account, "inactive_owner_account", i)
        if odd:
            self.cases.add(self.cases.account, "unicode_name_account", i)
        self.finish_people(acc)
        evaluate(self.cases, acc, self.today)
        return acc

    def _website(self, domain: str) -> str:
        form = int(self.rng.random() * 5)
        return (
            f"https://www.{domain}",
            f"http://{domain}",
            f"www.{domain}",
            domain,
            f"https://{domain}/",
        )[form]

    def _contact_count(self) -> int:
        mean = self.mean_contacts
        lo = max(1, int(mean * 0.4))
        hi = max(lo, round(2 * mean - lo))
        return self._between(lo, hi)

    def _next(self, kind: str) -> int:
        self.counters[kind] += 1
        return self.counters[kind]

    # ------------------------------------------------------------------ people

    def _person(
        self,
        acc: Account,
        emails: set[str],
        first: str | None,
        last: str,
        title: str,
        act_days: int | None,
        created_days: int | None = None,
        local: str | None = None,
    ) -> Person:
        rng = self.rng
        n = self._next("contact")
        if created_days is None:
            base = act_days if act_days is not None else 0
            created_days = snap(base + self._between(1, 1200 if act_days is None else 900))
        created = self._at(created_days)
        act = None if act_days is None else self._at(act_days, 8, 18)
        if local is None and first is not None:
            local = self._local(first, last)
        email = self._unique(f"{local}@{acc.domain}", emails) if local else None
        owner = acc.owner if rng.random() < 0.9 else self._pick(self.active_owners)
        p = Person(
            n=n,
            account=acc.i,
            first=first,
            last=last,
            title=title,
            dept=self._pick(W.DEPARTMENTS),
            email=email,
            owner=owner,
            created_days=created_days,
            created_ms=created,
            act_days=act_days,
            act_ms=act,
            lead_status=self._pick(W.HS_LEAD_STATUS),
        )
        return p

    def _local(self, first: str, last: str) -> str:
        f, la = first.lower(), last.lower()
        form = int(self.rng.random() * 4)
        return (f"{f}.{la}", f"{f[0]}{la}", f"{f}_{la}", f"{f}{la[0]}")[form]

    @staticmethod
    def _unique(email: str, taken: set[str]) -> str:
        if email in taken:
            local, _, domain = email.partition("@")
            k = 2
            while f"{local}{k}@{domain}" in taken:
                k += 1
            email = f"{local}{k}@{domain}"
        taken.add(email)
        return email

    def _name(self) -> tuple[str, str]:
        return self._pick(W.FIRST_NAMES), self._pick(W.LAST_NAMES)

    def _core_person(
        self, acc: Account, emails: set[str], role: str | None, engaged: bool
    ) -> Person:
        first, last = self._name()
        title = self._pick(W.TITLES_BY_ROLE[role] if role else W.FILLER_TITLES[:-1])
        act = snap(self._between(1, 87)) if engaged else self._between(93, 117)
        return self._person(
            acc, emails, first, last, title, act, snap(act + self._between(30, 1500))
        )

    def _core(self, acc: Account, emails: set[str]) -> list[Person]:
        """The people the account's situation needs, with the role each holds on the open deal."""
        s = acc.situation
        plan: list[tuple[str | None, bool]]  # (role, engaged)
        if s == "few_engaged":
            two = self.rng.random() < 0.5
            plan = [("Champion", True), ("Economic Buyer", two)]
        elif s == "no_economic_buyer":
            plan = [("Champion", True)] + [(self._pick(OTHER_CORE_ROLES), True) for _ in range(3)]
        elif s == "no_champion":
            plan = [("Economic Buyer", True)] + [
                (self._pick(OTHER_CORE_ROLES), True) for _ in range(3)
            ]
        else:
            others = 3 if s.startswith("departed") else 2
            plan = [("Champion", True), ("Economic Buyer", True)]
            plan += [(self._pick(OTHER_CORE_ROLES), True) for _ in range(others)]
        core: list[tuple[Person, str | None]] = []
        for role, engaged in plan:
            p = self._core_person(acc, emails, role, engaged)
            if role and self.rng.random() < 0.5:
                p.buying_role = W.HS_ROLE[role][1]
            core.append((p, role))
        if s.startswith("departed"):
            self._depart(acc, core[0][0], s.removeprefix("departed_"))
        self._core_roles = core
        return [p for p, _ in core]

    def _depart(self, acc: Account, p: Person, kind: str) -> None:
        """Turn the account's champion into one who left, the way `kind` shows it."""
        p.act_days = snap(self._between(100, 300))
        p.act_ms = self._at(p.act_days, 8, 18)
        p.created_days = snap(p.act_days + self._between(60, 900))
        p.created_ms = self._at(p.created_days)
        p.defect = f"departed_{kind}"
        if kind in ("bouncing", "moved"):
            self._hard_bounce(p, self._at(self._between(5, p.act_days - 5)))
        elif kind == "title":
            p.title = self._pick(W.DEPARTED_TITLES)
        elif kind == "email_domain":
            local = (p.email or "x@").partition("@")[0]
            p.email = self._unique(f"{local}@{self._pick(W.EXTERNAL_DOMAINS)}", self._global_emails)
        if kind == "moved":
            later = acc.i + 1 + int(self.rng.random() * min(50, self.accounts - acc.i - 1))
            self._pending_moves.setdefault(later, []).append((p, acc.i))

    def _arrive(self, acc: Account, old: Person, old_account: int, emails: set[str]) -> Person:
        """The moved champion's new record at this account: same name, this domain, new and quiet."""
        title = self._pick(W.TITLES_BY_ROLE["Decision Maker"] + W.TITLES_BY_ROLE["Champion"])
        local = f"{(old.first or '').lower()}.{old.last.lower()}"
        p = self._person(acc, emails, old.first, old.last, title, None, self._between(5, 50), local)
        p.owner = acc.owner
        self.cases.moved_pairs.append((old.n, old_account, p.n, acc.i))
        return p

    def _hard_bounce(self, p: Person, at_ms: int) -> None:
        """The address is gone (a departed champion's sign)."""
        p.bounce = "hard"
        p.bounce_reason, p.bounce_enum = self._pick(W.GONE_BOUNCES)
        p.bounce_ms = at_ms

    def _recorded_hard_bounce(self, p: Person, at_ms: int) -> None:
        """What HubSpot records as a hard bounce, drawn in W.HARD_BOUNCE_MIX's proportions."""
        x = self.rng.random() * sum(w for w, *_ in W.HARD_BOUNCE_MIX)
        pick = W.HARD_BOUNCE_MIX[-1]
        for entry in W.HARD_BOUNCE_MIX:
            x -= entry[0]
            if x < 0:
                pick = entry
                break
        _, p.bounce_reason, p.bounce_enum, p.bounce = pick
        p.bounce_ms = at_ms

    def _bounce_time(self, p: Person) -> int:
        base = p.act_ms if p.act_ms is not None else p.created_ms
        return base + int(self.rng.random() * (self.as_of_ms - base - 60_000))

    def _filler(self, acc: Account, emails: set[str]) -> Person:
        rng = self.rng
        defect = self.fillers.next()
        buckets = IDLE_BUCKETS if acc.situation == "few_engaged" else ACTIVITY_BUCKETS
        act = self._activity(buckets)
        first: str | None
        first, last = self._name()
        title = self._pick(W.FILLER_TITLES)
        local: str | None = None
        if defect == "unicode_name":
            first, last, local = W.UNICODE_PEOPLE[self._unicode_next % len(W.UNICODE_PEOPLE)]
            self._unicode_next += 1
        elif defect == "role_address":
            local = self._pick(W.ROLE_LOCALS)
            first, last, title = None, f"{local.capitalize()} Team", ""
        p = self._person(acc, emails, first, last, title, act, local=local)
        p.defect = defect
        if defect == "hard_bounce":
            self._recorded_hard_bounce(p, self._bounce_time(p))
        elif defect == "soft_bounce":
            p.bounce, p.bounce_reason, p.bounce_ms = (
                "soft",
                self._pick(W.SOFT_BOUNCES),
                self._bounce_time(p),
            )
        elif defect == "missing_email":
            emails.discard(p.email or "")
            p.email = None
        elif defect == "malformed_email":
            local = (p.email or "x@").partition("@")[0]
            form = int(rng.random() * 3)
            bad = (
                f"{local}@@{acc.domain.split('.')[0]}",
                f"{local}.{acc.domain}",
                f"{local.replace('.', ' ')} @{acc.domain}",
            )[form]
            emails.discard(p.email or "")
            p.email = bad
        elif defect == "personal_email":
            local = (p.email or "x@").partition("@")[0]
            emails.discard(p.email or "")
            p.email = self._unique(f"{local}@{self._pick(W.PERSONAL_DOMAINS)}", self._global_emails)
        elif defect == "opted_out":
            p.opted_out = True
        return p

    def _activity(self, buckets: tuple[tuple[Any, ...], ...]) -> int | None:
        total = sum(b[0] for b in buckets)
        x = self.rng.random() * total
        bucket = buckets[-1]
        for bucket in buckets:
            x -= bucket[0]
            if x < 0:
                break
        _, lo, hi = bucket
        if lo is None:
            return None
        return self._between(lo, hi)

    # ------------------------------------------------------------------ opportunities

    def _amount(self, tier: str) -> int:
        lo, hi = {"strategic": (100, 900), "growth": (30, 200), "maintenance": (5, 50)}.get(
            tier, (5, 100)
        )
        return self._between(lo * 2, hi * 2) * 500

    def _opp(self, acc: Account, close_day: int, stage: tuple[str, str], kind: str) -> Opportunity:
        n = self._next("opportunity")
        closed = stage in (W.WON_STAGE, W.LOST_STAGE)
        created_days = max(self.today - close_day, 0) + self._between(20, 200)
        created = self._at(created_days)
        modified_base = self._at(self.today - close_day) if closed else created
        o = Opportunity(
            n=n,
            account=acc.i,
            name=f"{acc.name} - {kind} {self._year(close_day)}",
            stage=stage,
            is_closed=closed,
            is_won=stage == W.WON_STAGE,
            close_day=close_day,
            amount=self._amount(acc.tier),
            owner=acc.owner,
            created_ms=created,
            modified_ms=self._modified(created, min(modified_base, self.as_of_ms - DAY_MS)),
        )
        acc.opps.append(o)
        return o

    @staticmethod
    def _year(day: int) -> str:
        return day_str(day)[:4]

    def _role(self, opp: Opportunity, p: Person, role: str | None) -> None:
        opp.roles.append(Role(p, role, primary=not opp.roles, n=self._next("role")))

    def _opportunities(self, acc: Account, fillers: list[Person]) -> None:
        rng = self.rng
        roles = self._core_roles
        open_opp = self._opp(
            acc,
            self.today + snap(self._between(5, 300)),
            self._pick(W.OPEN_STAGES),
            self._pick(W.OPP_KINDS),
        )
        for p, role in roles:
            self._role(open_opp, p, role)
        if fillers and rng.random() < 0.3:
            self._role(open_opp, self._pick(fillers), None)  # unlabelled contact on the deal
        if rng.random() < 0.5:
            won = self._opp(acc, self.today - snap(self._between(10, 700)), W.WON_STAGE, "Renewal")
            for p, role in roles:
                if role in REQUIRED_ROLES:
                    self._role(won, p, role)
        if rng.random() < 0.25:
            lost = self._opp(acc, self.today - self._between(10, 500), W.LOST_STAGE, "Expansion")
            if fillers:
                self._role(lost, self._pick(fillers), self._pick(("Evaluator", "Influencer", None)))
        if acc.situation == "healthy_lapsed_role":
            self._lapsed(acc)

    def _lapsed(self, acc: Account) -> None:
        """A bouncing former champion whose role is only on a lost or long-ago won deal."""
        first, last = self._name()
        p = self._person(
            acc,
            set(),
            first,
            last,
            self._pick(W.TITLES_BY_ROLE["Champion"]),
            snap(self._between(200, 600)),
        )
        p.email = f"{(first or '').lower()}.{last.lower()}.old@{acc.domain}"
        p.defect = "lapsed_role"
        self._hard_bounce(p, self._bounce_time(p))
        acc.people.append(p)
        if self.rng.random() < 0.5:
            opp = self._opp(acc, self.today - self._between(20, 300), W.LOST_STAGE, "New Business")
        else:
            opp = self._opp(
                acc,
                self.today - self._between(ROLE_WON_DAYS + 10, 800),
                W.WON_STAGE,
                "New Business",
            )
        self._role(opp, p, "Champion")
        self.cases.lapsed_role.append(p.n)

    def _task(self, acc: Account) -> None:
        recent = [p for p in acc.people if p.act_days is not None]
        if not recent:
            return
        p = min(recent, key=lambda q: (q.act_days, q.n))
        assert p.act_ms is not None
        acc.tasks.append(Task(self._next("task"), acc.i, p, p.owner, p.act_ms))

    # ------------------------------------------------------------------ finishing touches

    def finish_people(self, acc: Account) -> None:
        for p in acc.people:
            p.modified_ms = self._modified(p.created_ms, p.act_ms, p.bounce_ms)

    # ------------------------------------------------------------------ bad records

    def _bad_account(self, i: int) -> Account:
        created = self._at(400)
        acc = Account(
            i=i,
            name="Malformed Records Ltd",
            domain="malformed-records.com",
            website="https://malformed-records.com",
            owner=self.active_owners[0],
            tier="none",
            situation="bad_records",
            renewal_day=None,
            industry=0,
            employees=10,
            created_ms=created,
            modified_ms=self._modified(created),
            bad_tier="Platinum",
        )
        self.cases.bad.append(
            {"object": "account", "n": i + 1, "kind": "unknown_picklist", "field": "tier"}
        )
        emails: set[str] = set()
        bad_date = self._person(acc, emails, "Dana", "Baddate", "Analyst", 30, 200)
        bad_date.bad_date = "string"
        self.cases.bad.append(
            {"object": "contact", "n": bad_date.n, "kind": "bad_date", "field": "bad_date"}
        )
        extreme = self._person(acc, emails, "Eve", "Farfuture", "Analyst", 30, 200)
        extreme.bad_date = "extreme"
        self.cases.bad.append(
            {"object": "contact", "n": extreme.n, "kind": "extreme_date", "field": "last_activity"}
        )
        huge = self._person(acc, emails, "Hugo", "Hugetext", "Analyst", 30, 200)
        huge.text = ("Lorem ipsum dolor sit amet. " * 3700)[:100_000]
        self.cases.bad.append(
            {"object": "contact", "n": huge.n, "kind": "huge_text", "field": "description"}
        )
        acc.people = [bad_date, extreme, huge]
        opp = self._opp(acc, self.today + 30, W.OPEN_STAGES[0], "New Business")
        self._role(opp, huge, "Chief Cheerleader")
        self.cases.bad.append(
            {
                "object": "contact_role",
                "n": opp.roles[-1].n,
                "kind": "unknown_picklist",
                "field": "role",
                "opportunity": opp.n,
                "contact": huge.n,
            }
        )
        self.finish_people(acc)
        return acc
