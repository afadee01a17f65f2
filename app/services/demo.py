"""A believable contact centre for demos and screenshots: staff, channels, topics and weeks of history.

Inbound messages go through the real ingest (identities, routing, threading, reopen rules), so the data is
what the product itself would have stored. Replies are written as already sent: a demo must never put
anything in the outbox. Customers use reserved addresses only (example.com, the fictional +1 202 555 01xx
numbers), so nothing can reach a real person even if an agent answers a demo conversation for real.
The same seed always gives the same people, conversations and texts, relative to the current time.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import (
    Call,
    Channel,
    Conversation,
    ConversationTopic,
    Customer,
    CustomerIdentity,
    Message,
    Team,
    Topic,
    User,
    utcnow,
)
from app.services.channels import create_channel
from app.services.customers import add_identity
from app.services.ingest import ingest
from app.services.reply import recipient_for
from app.services.users import create_user
from connectors.base import Identity, InboundMessage, InvalidIdentity, ThreadHints, normalize_email

DAYS = 35
CHANNEL_NUMBER = "+12025550100"  # fictional (555-01xx), so a demo SMS or call can reach nobody

TEAMS = ("Support", "Sales")
STAFF = (
    ("Magdalena Wiśniewska", "supervisor", ()),
    ("Tomasz Kowalczyk", "agent", ("Support",)),
    ("Emily Carter", "agent", ("Support",)),
    ("Katarzyna Zielińska", "agent", ("Support",)),
    ("James O'Brien", "agent", ("Support", "Sales")),
    ("Michał Lewandowski", "agent", ("Sales",)),
    ("Sophie Turner", "agent", ("Sales",)),
)

TOPICS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Payment problem": ("#dc2626", ("Card declined", "Charged twice", "Refund status")),
    "Delivery": ("#2563eb", ("Late", "Damaged parcel", "Wrong address")),
    "Returns": ("#d97706", ("Return label", "Exchange")),
    "Account": ("#7c3aed", ("Password reset", "Change details")),
    "Product question": ("#059669", ("Availability", "Sizing")),
}

POLISH_FIRST = (
    "Anna",
    "Piotr",
    "Katarzyna",
    "Krzysztof",
    "Agnieszka",
    "Tomasz",
    "Magdalena",
    "Paweł",
    "Joanna",
    "Michał",
    "Aleksandra",
    "Marcin",
    "Ewa",
    "Łukasz",
    "Zofia",
    "Jakub",
    "Małgorzata",
    "Wojciech",
)
POLISH_LAST = (
    "Nowak",
    "Kowalska",
    "Wiśniewski",
    "Wójcik",
    "Kamińska",
    "Lewandowski",
    "Zielińska",
    "Szymański",
    "Woźniak",
    "Dąbrowska",
    "Kozłowski",
    "Jankowska",
    "Mazur",
    "Krawczyk",
    "Piotrowska",
    "Grabowski",
)
ENGLISH_FIRST = (
    "Oliver",
    "Amelia",
    "Harry",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Jack",
    "Grace",
    "Leo",
    "Freya",
    "Charlie",
    "Emily",
    "Thomas",
    "Lily",
    "Daniel",
    "Chloe",
)
ENGLISH_LAST = (
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
)
MAIL_HOSTS = ("example.com", "example.org", "example.net", "mail.example.com")


@dataclass(frozen=True)
class Scenario:
    """One kind of contact: its topic, what the customer says (EN, PL), the answer and a follow-up."""

    topic: str
    subtopic: str
    subject: tuple[str, str]
    opener: tuple[str, str]
    answer: tuple[str, str]
    follow_up: tuple[str, str]
    note: str | None = None


SCENARIOS = (
    Scenario(
        "Payment problem",
        "Card declined",
        ("Payment keeps failing", "Płatność nie przechodzi"),
        (
            "Hi, I tried to pay for order {order} three times and my card is declined every time. The bank says "
            "everything is fine on their side.",
            "Dzień dobry, próbuję zapłacić za zamówienie {order} i karta jest cały czas odrzucana. Bank twierdzi, "
            "że u nich wszystko w porządku.",
        ),
        (
            "Sorry about that! Our payment provider flagged the billing address. I have cleared the flag, so "
            "please try once more.",
            "Przepraszamy! Operator płatności zablokował adres rozliczeniowy. Zdjęłam blokadę, proszę spróbować "
            "jeszcze raz.",
        ),
        ("That worked, thank you!", "Zadziałało, dziękuję!"),
        "Provider flagged AVS mismatch; cleared manually.",
    ),
    Scenario(
        "Payment problem",
        "Charged twice",
        ("Charged twice for one order", "Podwójne obciążenie karty"),
        (
            "I see two charges of {amount} for order {order} on my statement. Please refund one of them.",
            "Widzę dwa obciążenia po {amount} za zamówienie {order}. Proszę o zwrot jednego z nich.",
        ),
        (
            "You are right, the second charge was a duplicate authorisation. It has been voided and will disappear "
            "within 3 working days.",
            "Ma Pani/Pan rację, drugie obciążenie to zdublowana autoryzacja. Została anulowana i zniknie w ciągu "
            "3 dni roboczych.",
        ),
        ("Great, I can see it's gone already.", "Super, już zniknęło."),
        "Duplicate auth from the 3DS retry; voided in the PSP dashboard.",
    ),
    Scenario(
        "Payment problem",
        "Refund status",
        ("Where is my refund?", "Gdzie jest mój zwrot?"),
        (
            "I returned order {order} two weeks ago and still have not received the refund.",
            "Odesłałem zamówienie {order} dwa tygodnie temu i nadal nie dostałem zwrotu pieniędzy.",
        ),
        (
            "The warehouse received your parcel yesterday; the refund of {amount} was issued today.",
            "Magazyn odebrał paczkę wczoraj, zwrot {amount} został dziś zlecony.",
        ),
        ("Thanks for checking.", "Dzięki za sprawdzenie."),
    ),
    Scenario(
        "Delivery",
        "Late",
        ("Order {order} has not arrived", "Zamówienie {order} nie dotarło"),
        (
            "My order {order} was supposed to arrive on Friday and the tracking has not moved since Tuesday.",
            "Zamówienie {order} miało przyjść w piątek, a śledzenie przesyłki stoi od wtorku.",
        ),
        (
            "I checked with the courier: the parcel is at the local depot and goes out for delivery tomorrow morning.",
            "Sprawdziłem u kuriera: paczka jest w lokalnym oddziale i jutro rano wyjedzie w doręczenie.",
        ),
        ("It came this morning, thanks.", "Przyszła dziś rano, dziękuję."),
        "Courier depot backlog in the region this week.",
    ),
    Scenario(
        "Delivery",
        "Damaged parcel",
        ("Parcel arrived damaged", "Paczka przyszła uszkodzona"),
        (
            "The box for order {order} was crushed and the lamp inside is broken.",
            "Karton z zamówieniem {order} był zgnieciony, a lampa w środku jest rozbita.",
        ),
        (
            "I am so sorry. A replacement ships today and you don't need to send the broken one back.",
            "Bardzo przepraszam. Wysyłamy dziś nowy egzemplarz, uszkodzonego nie trzeba odsyłać.",
        ),
        ("Thank you, that's very kind.", "Dziękuję, to bardzo miłe."),
    ),
    Scenario(
        "Delivery",
        "Wrong address",
        ("Wrong delivery address", "Zły adres dostawy"),
        (
            "I made a typo in the address for order {order}. Can you still change it?",
            "Pomyliłam się w adresie przy zamówieniu {order}. Czy da się go jeszcze zmienić?",
        ),
        (
            "Caught it just in time: the courier has the corrected address now.",
            "Udało się w ostatniej chwili: kurier ma już poprawiony adres.",
        ),
        ("Perfect!", "Super!"),
    ),
    Scenario(
        "Returns",
        "Return label",
        ("Return label", "Etykieta zwrotna"),
        (
            "I would like to return the shoes from order {order}. How do I get a label?",
            "Chcę zwrócić buty z zamówienia {order}. Jak dostanę etykietę zwrotną?",
        ),
        (
            "Here is your prepaid label; drop the parcel at any parcel locker within 14 days.",
            "Przesyłam opłaconą etykietę; paczkę można nadać w dowolnym paczkomacie w ciągu 14 dni.",
        ),
        ("Sent it today.", "Nadałem dzisiaj."),
    ),
    Scenario(
        "Returns",
        "Exchange",
        ("Exchange for another size", "Wymiana na inny rozmiar"),
        (
            "The jacket from order {order} is too small. Can I exchange it for an L?",
            "Kurtka z zamówienia {order} jest za mała. Czy mogę wymienić na L?",
        ),
        (
            "Of course. I reserved an L for you; send the M back with the enclosed slip.",
            "Oczywiście. Zarezerwowałam rozmiar L; proszę odesłać M z załączonym formularzem.",
        ),
        ("Thanks, on its way back.", "Dzięki, już odsyłam."),
    ),
    Scenario(
        "Account",
        "Password reset",
        ("Cannot log in", "Nie mogę się zalogować"),
        (
            "The password reset email never arrives. I checked spam too.",
            "Mail do resetu hasła w ogóle nie przychodzi. Sprawdzałem też spam.",
        ),
        (
            "Your address had a typo in our records; I fixed it and sent a new reset link.",
            "W naszej bazie był błąd w adresie; poprawiłem go i wysłałem nowy link.",
        ),
        ("Got it, I'm in.", "Doszło, zalogowałem się."),
        "Typo in the stored email (gmial); corrected after checking the order history.",
    ),
    Scenario(
        "Account",
        "Change details",
        ("Change my phone number", "Zmiana numeru telefonu"),
        (
            "Please update the phone number on my account, I have a new one.",
            "Proszę zaktualizować numer telefonu na koncie, mam nowy.",
        ),
        ("Done: your account now has the new number.", "Gotowe: konto ma już nowy numer."),
        ("Thank you.", "Dziękuję."),
    ),
    Scenario(
        "Product question",
        "Availability",
        ("Back in stock?", "Kiedy będzie dostępny?"),
        (
            "Will the grey armchair be back in stock before Christmas?",
            "Czy szary fotel będzie znowu dostępny przed świętami?",
        ),
        (
            "The next delivery is due in about ten days; I can put one aside for you.",
            "Następna dostawa ma być za około dziesięć dni; mogę jeden dla Pani/Pana odłożyć.",
        ),
        ("Yes please, reserve one.", "Tak, proszę zarezerwować."),
    ),
    Scenario(
        "Product question",
        "Sizing",
        ("Which size should I take?", "Jaki rozmiar wybrać?"),
        (
            "I am 182 cm and usually wear M. Which size of the winter parka would fit?",
            "Mam 182 cm wzrostu i zwykle noszę M. Jaki rozmiar parki zimowej będzie pasował?",
        ),
        ("The parka runs small, so we recommend L for you.", "Parka jest mała w rozmiarze, polecamy L."),
        ("Ordered the L, thanks.", "Zamówiłem L, dzięki."),
    ),
)

CALL_TRANSCRIPTS = (
    (
        "Hi, it's about order {order}, please call me back.",
        "Dzień dobry, dzwonię w sprawie zamówienia {order}, proszę o kontakt.",
    ),
)


@dataclass
class _Seeder:
    rng: random.Random
    now: dt.datetime
    domain: str
    seq: int = 0
    channels: dict[str, Channel] = field(default_factory=dict)
    teams: dict[str, Team] = field(default_factory=dict)
    agents: dict[str, list[User]] = field(default_factory=dict)
    topics: dict[tuple[str, str], int] = field(default_factory=dict)
    stats: dict[str, int] = field(default_factory=dict)

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}{self.seq:06d}"

    def count(self, key: str, n: int = 1) -> None:
        self.stats[key] = self.stats.get(key, 0) + n


def _mail_domain() -> str:
    """MAIL_DOMAIN when a mailbox can live there, else a reserved example domain (e.g. for *.localhost)."""
    domain = str(current_app.config["MAIL_DOMAIN"])
    try:
        normalize_email(f"support@{domain}")
    except InvalidIdentity:
        return "shop.example.com"
    return domain


def _slug(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name.replace("ł", "l").replace("Ł", "L"))
    ascii_name = ascii_name.encode("ascii", "ignore").decode()
    return ".".join(part for part in "".join(ch if ch.isalnum() else " " for ch in ascii_name.lower()).split())


def _staff(seeder: _Seeder, password: str) -> list[str]:
    teams = seeder.teams
    for name in TEAMS:
        team = db.session.scalar(select(Team).where(Team.name == name))
        if team is None:
            team = Team(name=name)
            db.session.add(team)
            db.session.commit()
        teams[name] = team
    logins = []
    for name, role, team_names in STAFF:
        email = f"{_slug(name).split('.')[0]}@{seeder.domain}"
        user = db.session.scalar(select(User).where(User.email == email))
        if user is None:
            user = create_user(email, name, password, role, team_ids=[teams[t].id for t in team_names])
            logins.append(f"{role:<10} {email}")
        for team_name in team_names:
            seeder.agents.setdefault(team_name, []).append(user)
    return logins


def _channels(seeder: _Seeder) -> None:
    support, sales = seeder.teams["Support"], seeder.teams["Sales"]
    public_url = current_app.config["PUBLIC_URL"]
    wanted: list[tuple[str, str, str | None, dict[str, Any], Team]] = [
        ("email", "Support mailbox", f"support@{seeder.domain}", {}, support),
        ("sms", "Twilio SMS", CHANNEL_NUMBER, {}, support),
        ("voice", "Twilio hotline", CHANNEL_NUMBER, {}, support),
        (
            "chat",
            "Shop chat",
            "https://shop.example.com",
            {"allowed_origins": ["https://shop.example.com", public_url]},
            sales,
        ),
        ("form", "Contact form", None, {"allowed_origins": ["https://shop.example.com", public_url]}, support),
        ("api", "Shop backend", None, {}, support),
    ]
    for kind, name, address, settings, team in wanted:
        existing = db.session.scalar(
            select(Channel).where(Channel.kind == kind, Channel.address == address if address else Channel.name == name)
        )
        if existing is None:
            existing, _token = create_channel(kind, name, address=address, settings=settings, team_id=team.id)
        seeder.channels[kind] = existing


def _topics(seeder: _Seeder) -> None:
    for parent_name, (colour, children) in TOPICS.items():
        parent = db.session.scalar(select(Topic).where(Topic.parent_id.is_(None), Topic.name == parent_name))
        if parent is None:
            parent = Topic(name=parent_name, colour=colour)
            db.session.add(parent)
            db.session.flush()
        seeder.topics[(parent_name, "")] = parent.id
        for child_name in children:
            child = db.session.scalar(select(Topic).where(Topic.parent_id == parent.id, Topic.name == child_name))
            if child is None:
                child = Topic(name=child_name, parent_id=parent.id, colour=colour)
                db.session.add(child)
                db.session.flush()
            seeder.topics[(parent_name, child_name)] = child.id
    db.session.commit()


@dataclass
class _Person:
    name: str
    polish: bool
    email: str | None
    phone: str | None
    visitor: str | None
    customer_id: int | None = None
    known: set[str] = field(default_factory=set)  # identity kinds already on the customer


def _people(seeder: _Seeder, count: int) -> list[_Person]:
    rng = seeder.rng
    people: list[_Person] = []
    used: set[str] = set()
    phones = iter(range(101, 200))
    for _ in range(count):
        polish = rng.random() < 0.55
        while True:
            first = rng.choice(POLISH_FIRST if polish else ENGLISH_FIRST)
            last = rng.choice(POLISH_LAST if polish else ENGLISH_LAST)
            if polish and first.endswith("a") and last.endswith("ski"):
                last = last[:-1] + "a"  # Kowalski → Kowalska for a woman's name
            if polish and not first.endswith("a") and last.endswith("ska"):
                last = last[:-1] + "i"
            if f"{first} {last}" not in used:
                break
        name = f"{first} {last}"
        used.add(name)
        email = f"{_slug(name)}@{rng.choice(MAIL_HOSTS)}" if rng.random() < 0.85 else None
        phone = f"+1202555{next(phones, 199):04d}" if rng.random() < 0.6 or email is None else None
        visitor = f"demo-visitor-{rng.getrandbits(48):012x}" if rng.random() < 0.3 else None
        people.append(_Person(name, polish, email, phone, visitor))
    return people


def _fill(template: str, order: str, amount: str) -> str:
    return template.format(order=order, amount=amount)


def _channel_for(seeder: _Seeder, person: _Person) -> str:
    """Pick the channel this person starts a conversation on, among the ones they can use."""
    options = []
    if person.email:
        options += ["email"] * 5 + ["form"]
    if person.phone:
        options += ["sms"] * 2 + ["voice"] * 2
    if person.visitor:
        options += ["chat"] * 3
    if person.email and seeder.rng.random() < 0.05:
        options.append("api")
    return seeder.rng.choice(options)


def _identity_for(person: _Person, kind: str) -> Identity:
    if kind in ("email", "form", "api"):
        return Identity("email", person.email or "")
    if kind in ("sms", "voice"):
        return Identity("phone", person.phone or "")
    return Identity("chat", person.visitor or "")


def _ingest(seeder: _Seeder, person: _Person, via: str, text: str, at: dt.datetime, **extra: Any) -> Any:
    """Ingest one inbound item from ``person`` on channel ``via`` at simulated time ``at``."""
    identity = _identity_for(person, via)
    if person.customer_id is not None and identity.kind not in person.known:
        # They were already a customer on another channel: an agent linked the new identity earlier.
        add_identity(person.customer_id, identity.kind, identity.value, source="agent", verified=True)
    channel = seeder.channels[via]
    inbound = InboundMessage(
        channel=via,
        sender=identity,
        recipient=channel.address or "",
        sender_name=person.name,
        text=text,
        received_at=at,
        provider_id=extra.pop("provider_id", None) or seeder.next_id(f"demo-{via}-"),
        **extra,
    )
    result = ingest(inbound, channel, now=at)
    person.customer_id = result.customer.id
    person.known.add(identity.kind)
    seeder.count("inbound")
    return result


def _answer(
    seeder: _Seeder, conversation: Conversation, agent: User, kind: str, text: str, at: dt.datetime, subject: str
) -> Message:
    """Store an agent's reply as already delivered (a demo never queues anything for sending)."""
    out_kind = {"form": "email", "voice": "sms"}.get(kind, kind)
    recipient = recipient_for(conversation, out_kind)
    if recipient is None:
        out_kind = "email" if recipient_for(conversation, "email") else kind
        recipient = recipient_for(conversation, out_kind)
    channel = seeder.channels.get(out_kind)
    message = Message(
        conversation_id=conversation.id,
        customer_id=conversation.customer_id,
        channel=out_kind,
        channel_id=channel.id if channel else None,
        direction="out",
        kind="message",
        author_id=agent.id,
        identity_id=recipient.id if recipient else None,
        subject=f"Re: {subject}" if out_kind == "email" else None,
        text=text,
        delivery_status="delivered" if out_kind == "sms" else "sent",
        attempts=1,
        provider_id=seeder.next_id(f"demo-out-{out_kind}-"),
        message_id_header=f"<{seeder.next_id('demo-')}@{seeder.domain}>" if out_kind == "email" else None,
        created_at=at,
        sent_at=at + dt.timedelta(seconds=2),
    )
    db.session.add(message)
    conversation.first_response_at = conversation.first_response_at or at
    conversation.last_activity_at = at
    conversation.last_channel = out_kind
    if conversation.assignee_id is None:
        conversation.assignee_id = agent.id
    db.session.commit()
    seeder.count("replies")
    return message


def _note(seeder: _Seeder, conversation: Conversation, agent: User, text: str, at: dt.datetime) -> None:
    db.session.add(
        Message(
            conversation_id=conversation.id,
            customer_id=conversation.customer_id,
            channel="note",
            direction="out",
            kind="note",
            author_id=agent.id,
            text=text,
            delivery_status="not_sent",
            created_at=at,
        )
    )
    conversation.last_activity_at = max(conversation.last_activity_at, at)
    db.session.commit()
    seeder.count("notes")


def _call(seeder: _Seeder, person: _Person, at: dt.datetime, agent: User, text: tuple[str, str], order: str) -> Any:
    """An inbound call: answered with a duration, or missed, or a voicemail with its transcription."""
    rng = seeder.rng
    outcome = rng.choices(["completed", "missed", "voicemail"], weights=[6, 2, 2])[0]
    sid = "CA" + f"{rng.getrandbits(128):032x}"
    result = _ingest(seeder, person, "voice", "Call", at, kind="call", provider_id=sid)
    call = Call(
        message_id=result.message.id,
        provider_sid=sid,
        direction="in",
        status=outcome,
        from_number=person.phone,
        to_number=CHANNEL_NUMBER,
        started_at=at,
        meta={"channel_id": seeder.channels["voice"].id, "demo": True},
    )
    conversation = result.conversation
    if outcome == "completed":
        call.agent_id = agent.id
        call.answered_at = at + dt.timedelta(seconds=rng.randint(4, 40))
        call.duration = max(1, min(rng.randint(45, 900), int((seeder.now - call.answered_at).total_seconds())))
        call.ended_at = call.answered_at + dt.timedelta(seconds=call.duration)
        conversation.first_response_at = conversation.first_response_at or call.answered_at
        conversation.assignee_id = conversation.assignee_id or agent.id
    else:
        call.ended_at = at + dt.timedelta(seconds=rng.randint(20, 60))
        conversation.call_back = True
        if outcome == "voicemail":
            call.voicemail = True
            call.recording_duration = rng.randint(8, 50)
            call.transcription = _fill(text[1] if person.polish else text[0], order, "")
    db.session.add(call)
    db.session.flush()
    try:
        from app.services.calls import summary
    except ImportError:  # pragma: no cover - the voice service ships with the product
        result.message.text = f"Call: {outcome}"
    else:
        result.message.text = summary(call)
    db.session.commit()
    seeder.count("calls")
    return result


def _later(seeder: _Seeder, at: dt.datetime, minutes: int) -> dt.datetime:
    """``minutes`` after ``at``, but never in the future: the most recent conversations are still going on."""
    return min(at + dt.timedelta(minutes=minutes), seeder.now - dt.timedelta(minutes=1))


def _conversation(seeder: _Seeder, person: _Person, start: dt.datetime, final: str) -> dt.datetime:
    """Play one conversation from ``start``; leave it in status ``final``; return when it went quiet."""
    rng = seeder.rng
    scenario = rng.choice(SCENARIOS)
    lang = 1 if person.polish else 0
    order = f"#{rng.randint(10000, 99999)}"
    amount = f"{rng.randint(39, 899)}.{rng.choice(['00', '49', '99'])} {'PLN' if person.polish else 'EUR'}"
    subject = _fill(scenario.subject[lang], order, amount)
    team_name = "Sales" if scenario.topic == "Product question" else "Support"
    agent = rng.choice(seeder.agents[team_name])
    kind = _channel_for(seeder, person)
    at = start

    if kind == "voice":
        result = _call(seeder, person, at, agent, CALL_TRANSCRIPTS[0], order)
    else:
        text = _fill(scenario.opener[lang], order, amount)
        result = _ingest(seeder, person, kind, text, at, subject=subject if kind in ("email", "form") else None)
    conversation: Conversation = result.conversation
    conversation.team_id = seeder.teams[team_name].id
    topic_ids = [seeder.topics[(scenario.topic, scenario.subtopic)]]
    for topic_id in topic_ids:
        if db.session.get(ConversationTopic, (conversation.id, topic_id)) is None:
            db.session.add(
                ConversationTopic(
                    conversation_id=conversation.id,
                    topic_id=topic_id,
                    added_by_id=agent.id,
                    created_at=at + dt.timedelta(minutes=5),
                )
            )
    db.session.commit()

    if final == "open" and rng.random() < 0.5:
        # Brand new and nobody has picked it up yet.
        conversation.assignee_id = None
        db.session.commit()
        return at

    at = _later(seeder, at, rng.randint(4, 180))
    if scenario.note and rng.random() < 0.6:
        _note(seeder, conversation, agent, scenario.note, at)
        at = _later(seeder, at, rng.randint(1, 20))
    answer = _answer(seeder, conversation, agent, kind, _fill(scenario.answer[lang], order, amount), at, subject)

    if final in ("pending", "snoozed"):
        conversation.status = final
        if final == "snoozed":
            conversation.snoozed_until = seeder.now + dt.timedelta(days=rng.randint(1, 4), hours=rng.randint(0, 8))
        db.session.commit()
        return at

    # The customer answers, on the same channel or, now and then, on another one they have.
    at = _later(seeder, at, rng.randint(20, 60 * 20))
    follow_kind = answer.channel if answer.channel in ("email", "sms", "chat") else "email"
    if rng.random() < 0.25:
        follow_kind = _channel_for(seeder, person)
    if follow_kind == "voice":
        _call(seeder, person, at, agent, CALL_TRANSCRIPTS[0], order)
    else:
        hints = ThreadHints(in_reply_to=answer.message_id_header) if follow_kind == "email" else ThreadHints()
        _ingest(
            seeder,
            person,
            follow_kind if follow_kind != "form" else "email",
            _fill(scenario.follow_up[lang], order, amount),
            at,
            thread=hints,
            subject=f"Re: {subject}" if follow_kind == "email" else None,
        )
    db.session.refresh(conversation)
    if final == "open":
        return at
    conversation.status = "resolved"
    conversation.resolved_at = _later(seeder, at, rng.randint(5, 240))
    conversation.last_activity_at = conversation.resolved_at
    db.session.commit()
    return conversation.resolved_at


def seed_demo(customers: int = 50, seed: int = 7, password: str | None = None) -> str:
    """Fill an empty helpdesk with a believable contact centre; return a summary (or why nothing was done)."""
    existing = db.session.scalar(select(func.count(Customer.id)))
    if existing:
        return (
            f"The database already has {existing} customers: seed-demo only fills an empty helpdesk, "
            "so nothing was changed."
        )
    rng = random.Random(seed)
    now = utcnow().replace(microsecond=0)
    seeder = _Seeder(rng=rng, now=now, domain=_mail_domain())
    password = password or secrets.token_urlsafe(9)
    logins = _staff(seeder, password)
    _channels(seeder)
    _topics(seeder)

    people = _people(seeder, customers)
    start_of_history = now - dt.timedelta(days=DAYS)
    plans: list[tuple[dt.datetime, int, str]] = []
    for index, _person in enumerate(people):
        # About half of them wrote in the last few days (the live inbox); the rest only in earlier weeks.
        recent = rng.random() < 0.5
        start = now - dt.timedelta(days=rng.uniform(0.1, 5.5) if recent else rng.uniform(6, 16))
        for position in range(rng.choices([1, 2, 3], weights=[5, 4, 2])[0]):
            if start < start_of_history:
                break
            final = "resolved"
            if position == 0 and recent:
                final = rng.choices(["open", "pending", "snoozed", "resolved"], weights=[5, 4, 2, 3])[0]
            plans.append((start, index, final))
            # Nine days or more apart, so each earlier contact was resolved outside the reopen window.
            start -= dt.timedelta(days=rng.uniform(9, 14))
    # Play everything in time order, like it happened.
    for start, index, final in sorted(plans, key=lambda plan: (plan[0], plan[1])):
        _conversation(seeder, people[index], start, final)
        seeder.count(f"status:{final}")

    for person in people:  # customers appear when they first wrote
        if person.customer_id is None:
            continue
        first = db.session.scalar(select(func.min(Message.created_at)).where(Message.customer_id == person.customer_id))
        customer = db.session.get_one(Customer, person.customer_id)
        customer.created_at = first or customer.created_at
        customer.updated_at = customer.created_at
        for identity in db.session.scalars(
            select(CustomerIdentity).where(CustomerIdentity.customer_id == person.customer_id)
        ):
            identity.created_at = customer.created_at
    db.session.commit()

    conversations = db.session.scalar(select(func.count(Conversation.id)))
    by_status = select(Conversation.status, func.count()).group_by(Conversation.status)
    statuses: dict[str, int] = dict(db.session.execute(by_status).tuples().all())
    lines = [
        f"Demo contact centre ready: {len(people)} customers, {conversations} conversations "
        f"({', '.join(f'{statuses.get(s, 0)} {s}' for s in ('open', 'pending', 'snoozed', 'resolved'))}), "
        f"{seeder.stats.get('inbound', 0)} inbound messages and calls ({seeder.stats.get('calls', 0)} calls), "
        f"{seeder.stats.get('replies', 0)} replies, {seeder.stats.get('notes', 0)} notes.",
    ]
    if logins:
        lines.append(f"Staff accounts (password for all: {password}):")
        lines += [f"  {login}" for login in logins]
    return "\n".join(lines)
