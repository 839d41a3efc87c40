"""Fixed word lists the generator draws from: company names, people, titles.

Why fixed lists: the generator must be deterministic and offline, and a list
index is the cheapest way to make a realistic string a million times.

Company names are `<first> <second> <form>` and domains `<first><second>.<tld>`;
every legal form has its own top-level domain, so distinct (first, second, form)
triples give distinct domains. Org domains never contain a hyphen; the
"other employer" domains in `EXTERNAL_DOMAINS` always do, so the two sets can
never collide.

No title may contain the words the departed-champion rule looks for (former,
ex-, no longer, left) anywhere, not even inside a word ("Performance" is out):
only the planted departed champions carry them.
"""

from __future__ import annotations

# (display, slug): a few carry non-ASCII letters, their slug is the ASCII form
COMPANY_FIRST: tuple[tuple[str, str], ...] = tuple(
    (w, w.lower())
    for w in (
        "Acme Apex Arbor Argent Aster Atlas Aurora Axiom Beacon Birch Blue Bolt Boreal "
        "Bright Brook Cascade Cedar Cinder Clear Cobalt Comet Copper Coral Crest Crimson "
        "Crystal Delta Drift Eagle Echo Ember Emerald Evergreen Falcon Fern Firefly Flint "
        "Forge Fox Frontier Garnet Glacier Golden Granite Graph Harbor Hawk Helix Horizon "
        "Indigo Iron Ivy Jade Juniper Keystone Kite Lake Lantern Laurel Ledger Lime Linden "
        "Lotus Lumen Lunar Magnet Maple Marble Meadow Meridian Mesa Metro Mint Monarch "
        "Moss Nimbus Noble North Nova Oak Onyx Orbit Orchid Pacific Panda Peak Pebble "
        "Pine Pioneer Pixel Polar Prairie Prism Quartz Quill Radiant Raven Redwood Ridge "
        "River Rocket Sable Sage Salt Sapphire Scarlet Sequoia Sierra Silver Slate Solar "
        "Spark Spruce Steel Stone Summit Swift Tidal Timber Topaz Trail Tundra Umber "
        "Vector Velvet Verde Vista Willow Wind Zenith Zephyr"
    ).split()
) + (("Köln", "koeln"), ("Zürich", "zuerich"), ("São", "sao"), ("Malmö", "malmoe"))

COMPANY_SECOND: tuple[str, ...] = tuple(
    (
        "Analytics Biotech Bioworks Brands Capital Cloud Consulting Data Designs Devices "
        "Dynamics Energy Engineering Foods Freight Games Genomics Grid Health Holdings "
        "Industries Insights Instruments Labs Learning Logic Logistics Machines Media "
        "Medical Metrics Mobility Motors Networks Optics Outdoor Partners Payments "
        "Pharma Photonics Power Robotics Security Semiconductors Software Solutions "
        "Sports Studios Supply Systems Technologies Telecom Textiles Therapeutics Tools "
        "Travel Ventures Vision Water Works"
    ).split()
)

# (legal form, tld): one tld per form keeps domains unique
COMPANY_FORM: tuple[tuple[str, str], ...] = (
    ("Inc", "com"),
    ("Labs", "io"),
    ("GmbH", "de"),
    ("Ltd", "co.uk"),
    ("BV", "nl"),
    ("AB", "se"),
    ("SAS", "fr"),
    ("Pty Ltd", "com.au"),
    ("KK", "jp"),
    ("Oy", "fi"),
    ("AG", "ch"),
    ("SRL", "it"),
    ("Corp", "net"),
    ("Co", "co"),
    ("LLC", "us"),
    ("ApS", "dk"),
)

INDUSTRIES: tuple[str, ...] = (
    "Technology",
    "Finance",
    "Healthcare",
    "Manufacturing",
    "Retail",
    "Energy",
    "Education",
    "Media",
    "Transportation",
    "Telecommunications",
)
# HubSpot's industry enumeration uses upper-case internal values
HS_INDUSTRIES: tuple[str, ...] = (
    "COMPUTER_SOFTWARE",
    "FINANCIAL_SERVICES",
    "HOSPITAL_HEALTH_CARE",
    "MACHINERY",
    "RETAIL",
    "OIL_ENERGY",
    "EDUCATION_MANAGEMENT",
    "MEDIA_PRODUCTION",
    "TRANSPORTATIONTRUCKINGRAILROAD",
    "TELECOMMUNICATIONS",
)

FIRST_NAMES: tuple[str, ...] = tuple(
    (
        "Aaron Abigail Adam Adrian Aisha Alan Alex Alice Amara Amelia Amir Ana Andrea "
        "Andrew Anna Anton Arjun Ava Ben Bianca Boris Brian Carla Carlos Caroline Chen "
        "Chloe Chris Claire Daniel David Diana Diego Dmitri Elena Eli Emily Emma Eric "
        "Erin Ethan Eva Fatima Felix Fiona Gabriel Grace Hannah Hana Hiro Ian Ines Isaac "
        "Ivan Jack Jacob James Jane Jason Javier Jenna Jessica Joao John Jonas Jordan "
        "Julia Karen Kate Kenji Kevin Laila Lars Laura Leo Liam Lily Lucas Luis Maya "
        "Marco Maria Mark Marta Mateo Max Mei Mia Michael Mina Nadia Nathan Nina Noah "
        "Olga Oliver Omar Paul Pedro Priya Rachel Rafael Ravi Rosa Ryan Sam Sara Sean "
        "Sofia Sophie Stefan Tara Thomas Tom Uma Victor Wei Will Yara Yusuf Zara Zoe"
    ).split()
)

LAST_NAMES: tuple[str, ...] = tuple(
    (
        "Abbott Adams Ahmed Alvarez Andersen Bailey Baker Banerjee Becker Bell Berg "
        "Brooks Brown Campbell Carter Castro Chang Chen Clark Cohen Collins Cooper Costa "
        "Cruz Davis Diaz Dubois Edwards Evans Fischer Fleming Ford Foster Garcia Gomez "
        "Gonzalez Gray Green Gupta Hall Hansen Harris Hayes Hernandez Hill Hoffmann "
        "Hughes Ito Jackson Jensen Johnson Jones Kaur Kelly Khan Kim King Klein Kowalski "
        "Kumar Larsen Lee Lewis Lopez Martin Martinez Meyer Miller Mitchell Moore Morales "
        "Morgan Murphy Nakamura Nguyen Nielsen Novak Okafor Olsen Ortiz Park Patel Perez "
        "Peters Petrov Phillips Price Quinn Ramirez Reed Reyes Richter Rivera Roberts "
        "Rodriguez Rossi Russo Sanchez Santos Sato Schmidt Schneider Shah Silva Singh "
        "Smith Sousa Stewart Suzuki Tanaka Taylor Thomas Thompson Torres Turner Walker "
        "Wang Ward Watson Weber White Williams Wilson Wong Wright Yamamoto Young Zhang"
    ).split()
)

# (first, last, email local part): odd unicode a real org holds
UNICODE_PEOPLE: tuple[tuple[str, str, str], ...] = (
    ("Jürgen", "Köln-Müller", "juergen.koeln-mueller"),
    ("美咲", "山田", "misaki.yamada"),
    ("محمد", "العلي", "mohammed.alali"),
    ("Sam 🚀", "Rivera", "sam.rivera"),
    ("Jose\u0301", "Nun\u0303ez", "jose.nunez"),  # combining acute and tilde
    ("יוסי", "כהן", "yossi.cohen"),
    ("Zoë", "Ødegård", "zoe.odegard"),
    ("Łukasz", "Wałęsa 👍", "lukasz.walesa"),
)

DEPARTMENTS: tuple[str, ...] = (
    "Sales",
    "Marketing",
    "Engineering",
    "Finance",
    "Operations",
    "IT",
    "Product",
    "Customer Success",
    "Legal",
    "Human Resources",
)

# Titles by the role the person plays. None of them contains a "left the
# company" word (see module docstring); tests check this.
TITLES_BY_ROLE: dict[str, tuple[str, ...]] = {
    "Economic Buyer": ("CFO", "VP Finance", "Chief Operating Officer", "Head of Procurement"),
    "Champion": (
        "Director of Sales Operations",
        "Head of Revenue Operations",
        "Director of Engineering",
        "Head of Customer Success",
        "Senior Product Manager",
    ),
    "Executive Sponsor": ("CEO", "Chief Revenue Officer", "CTO", "Chief Marketing Officer"),
    "Decision Maker": ("VP Sales", "VP Engineering", "VP Marketing", "VP Operations"),
    "Technical Buyer": ("IT Director", "Head of IT", "Solutions Architect", "Security Lead"),
    "Influencer": ("Sales Manager", "Marketing Manager", "Team Lead", "Principal Engineer"),
    "Evaluator": ("Business Analyst", "Systems Analyst", "Software Engineer", "Data Analyst"),
    "Business User": ("Account Executive", "Customer Success Manager", "SDR", "Sales Associate"),
}
FILLER_TITLES: tuple[str, ...] = (
    "Account Executive",
    "Account Manager",
    "Business Analyst",
    "Customer Success Manager",
    "Data Analyst",
    "Director of Marketing",
    "Engineering Manager",
    "Finance Manager",
    "HR Business Partner",
    "Marketing Manager",
    "Office Manager",
    "Operations Manager",
    "Product Designer",
    "Product Manager",
    "Recruiter",
    "Sales Manager",
    "Senior Software Engineer",
    "Software Engineer",
    "Solutions Engineer",
    "Support Specialist",
    "Controller",
    "Paralegal",
    "Procurement Specialist",
    "",  # some contacts have no title
)

# How a departed champion's title reads in a CRM nobody cleaned up
DEPARTED_TITLES: tuple[str, ...] = (
    "Former VP Sales",
    "ex-CTO",
    "Head of Customer Success (no longer with company)",
    "Left the company",
    "EX-Director of Engineering",
    "former Head of Revenue Operations",
)

# The other employer of a champion whose address moved; hyphenated, never an org domain
EXTERNAL_DOMAINS: tuple[str, ...] = (
    "gmail.com",
    "outlook.com",
    "new-horizon-partners.com",
    "brightpath-ventures.io",
    "northstar-consulting.de",
    "bluewave-group.co.uk",
)
PERSONAL_DOMAINS: tuple[str, ...] = ("gmail.com", "yahoo.com", "outlook.com", "icloud.com")

ROLE_LOCALS: tuple[str, ...] = ("info", "sales", "support", "billing", "admin", "hello", "contact")

# Addresses that are gone: (SMTP reason, HubSpot hs_email_hard_bounce_reason_enum). The
# planted departures (a champion's email bounces) use these.
GONE_BOUNCES: tuple[tuple[str, str], ...] = (
    ("550 5.1.1 User unknown", "UNKNOWN_USER"),
    ("550 5.1.1 The email account that you tried to reach does not exist", "UNKNOWN_USER"),
)
# What HubSpot records as a hard bounce, in proportion: (weight in %, SMTP reason, the
# hs_email_hard_bounce_reason_enum option, the bounce as crmsync's rules read it). The
# options are HubSpot's six (CONTENT, MAILBOX_FULL, OTHER, POLICY, SPAM, UNKNOWN_USER;
# api-facts §4); HubSpot counts every one as a hard bounce, but only an unknown user
# means the address is gone. The weights are ASSUMED, not measured: no published breakdown
# of HubSpot's reasons was found; most hard bounces are addresses that no longer exist.
# Kinds: "hard" bounces in both CRMs (Salesforce keeps the SMTP text); "soft" is a full
# mailbox (Salesforce records the temporary 4.2.2 answer); "refused" is a refusal about the
# sender or the message (HubSpot records it; in the Salesforce rendering the mail went
# through).
HARD_BOUNCE_MIX: tuple[tuple[int, str, str, str], ...] = (
    (30, "550 5.1.1 User unknown", "UNKNOWN_USER", "hard"),
    (
        30,
        "550 5.1.1 The email account that you tried to reach does not exist",
        "UNKNOWN_USER",
        "hard",
    ),
    (10, "452 4.2.2 Mailbox full", "MAILBOX_FULL", "soft"),
    (10, "550 5.7.1 Message rejected as spam", "SPAM", "refused"),
    (
        8,
        "550 5.7.26 Unauthenticated email is not accepted due to the sender's DMARC policy",
        "POLICY",
        "refused",
    ),
    (5, "554 5.6.0 Message content rejected", "CONTENT", "refused"),
    (7, "550 5.0.0 Message could not be delivered", "OTHER", "hard"),
)
SOFT_BOUNCES: tuple[str, ...] = ("452 4.2.2 Mailbox full", "421 4.7.0 Try again later")

OPP_KINDS: tuple[str, ...] = (
    "Renewal",
    "Expansion",
    "New Business",
    "Upsell - Platform",
    "Add-on Seats",
    "Services",
)

# (Salesforce StageName, HubSpot dealstage) for open stages of the default pipelines
OPEN_STAGES: tuple[tuple[str, str], ...] = (
    ("Prospecting", "appointmentscheduled"),
    ("Qualification", "qualifiedtobuy"),
    ("Needs Analysis", "qualifiedtobuy"),
    ("Value Proposition", "presentationscheduled"),
    ("Id. Decision Makers", "decisionmakerboughtin"),
    ("Proposal/Price Quote", "contractsent"),
    ("Negotiation/Review", "contractsent"),
)
WON_STAGE = ("Closed Won", "closedwon")
LOST_STAGE = ("Closed Lost", "closedlost")

HS_LEAD_STATUS: tuple[str, ...] = ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "CONNECTED")

# Salesforce role -> HubSpot: (deal->contact association label or None, hs_buying_role)
HS_ROLE: dict[str, tuple[str | None, str]] = {
    "Champion": ("Champion", "CHAMPION"),
    "Economic Buyer": ("Economic Buyer", "BUDGET_HOLDER"),
    "Executive Sponsor": ("Executive Sponsor", "EXECUTIVE_SPONSOR"),
    "Decision Maker": ("Decision Maker", "DECISION_MAKER"),
    "Technical Buyer": (None, "OTHER"),
    "Influencer": (None, "INFLUENCER"),
    "Evaluator": (None, "OTHER"),
    "Business User": (None, "END_USER"),
}
