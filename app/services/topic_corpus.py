"""Synthetic customer messages for the demo taxonomy, for training and measuring the topic suggester.

Each subtopic of app.services.demo.TOPICS has several ways customers open a conversation, in English and
Polish, with slots (order numbers, products, amounts, couriers, dates). Around them: optional greetings,
context and sign-offs, typing noise (lower case, dropped punctuation, swapped letters), vague openers that
barely name the problem ("any news on order 48213?"), messages that mention a second issue, and a few
conversations an agent tagged with a sibling topic by mistake. The same seed gives the same corpus.
"""

from __future__ import annotations

import random

# (parent, subtopic) → (English openers, Polish openers)
OPENERS: dict[tuple[str, str], tuple[tuple[str, ...], tuple[str, ...]]] = {
    ("Payment problem", "Card declined"): (
        (
            "my card keeps getting declined when I try to pay for order {order}",
            "the payment fails at checkout every time, the bank says the card is fine",
            "I can't pay, it says transaction refused after I enter the code from my bank",
            "why is my {card} rejected? tried three times for the {product}",
            "checkout shows 'payment declined' but there is money on my account",
            "tried to buy the {product} and the payment just won't go through",
            "3D secure page closes and then the card is declined, order {order}",
        ),
        (
            "karta jest odrzucana przy płatności za zamówienie {order}",
            "płatność nie przechodzi, bank mówi że z kartą wszystko ok",
            "nie mogę zapłacić, wyskakuje transakcja odrzucona",
            "próbuję kupić {product_pl} i płatność się nie udaje",
        ),
    ),
    ("Payment problem", "Charged twice"): (
        (
            "I was charged twice for order {order}, two payments of {amount}",
            "there are two identical charges of {amount} on my statement",
            "you took the money twice! please refund the duplicate",
            "my bank shows a double charge for the {product}",
            "paid once but {amount} was taken two times from my card",
            "duplicate transaction on my credit card for order {order}",
        ),
        (
            "zostałam obciążona dwa razy za zamówienie {order}",
            "na wyciągu mam dwie takie same płatności po {amount}",
            "pobraliście pieniądze podwójnie, proszę o zwrot jednej",
        ),
    ),
    ("Payment problem", "Refund status"): (
        (
            "where is my refund for order {order}? you received the return {days} days ago",
            "still waiting for my money back for the {product}",
            "when will the refund of {amount} reach my account?",
            "you confirmed the refund last week but nothing arrived yet",
            "how long does a refund take? I sent the parcel back on {date}",
            "the return was accepted but I haven't been refunded",
        ),
        (
            "kiedy dostanę zwrot pieniędzy za zamówienie {order}?",
            "nadal czekam na zwrot {amount}, paczka dotarła do was {days} dni temu",
            "zwrot został przyjęty ale pieniądze nie wróciły",
        ),
    ),
    ("Delivery", "Late"): (
        (
            "my order {order} has not arrived yet, it was due on {date}",
            "where is my parcel? tracking hasn't moved for {days} days",
            "the {product} should have been delivered by now",
            "{courier} says the package is stuck at the depot",
            "ordered {days} days ago and still nothing, when will it come?",
            "delivery is late, I need the {product} before the weekend",
            "tracking number shows no updates since {date}",
        ),
        (
            "zamówienie {order} jeszcze nie dotarło, miało być {date}",
            "gdzie jest moja paczka? śledzenie stoi od {days} dni",
            "kurier {courier} nie dowiózł przesyłki",
            "przesyłka się spóźnia, kiedy będzie?",
        ),
    ),
    ("Delivery", "Damaged parcel"): (
        (
            "the parcel arrived damaged and the {product} is broken",
            "box was crushed, the glass inside is smashed",
            "received order {order} today, the item is scratched and dented",
            "{courier} delivered a wet, torn package and the {product} doesn't work",
            "the {product} came broken, I have photos of the box",
            "one leg of the {product} snapped in transport",
        ),
        (
            "paczka przyszła uszkodzona, {product_pl} jest rozbity",
            "karton był zgnieciony a towar porysowany",
            "zamówienie {order} dotarło zniszczone",
        ),
    ),
    ("Delivery", "Wrong address"): (
        (
            "I entered the wrong delivery address for order {order}, can you change it?",
            "please update the shipping address, I moved last week",
            "typo in my street name on order {order}, the courier can't find me",
            "can I send the parcel to my office instead of home?",
            "the address on the order is old, please redirect the {product}",
        ),
        (
            "podałem zły adres dostawy przy zamówieniu {order}",
            "proszę zmienić adres wysyłki, pomyliłam numer mieszkania",
            "czy można przekierować paczkę na inny adres?",
        ),
    ),
    ("Returns", "Return label"): (
        (
            "how do I return the {product}? I need a return label",
            "please send me a prepaid label to send order {order} back",
            "I want to return my purchase, where do I get the shipping label?",
            "can I drop the return at a parcel locker? I don't have a label",
            "return form didn't include a label for the {product}",
        ),
        (
            "chcę zwrócić {product_pl}, jak dostanę etykietę zwrotną?",
            "proszę o etykietę do zwrotu zamówienia {order}",
            "jak odesłać towar? nie mam etykiety",
        ),
    ),
    ("Returns", "Exchange"): (
        (
            "the {product} is too small, can I exchange it for a bigger size?",
            "I'd like to swap the {colour} one for another colour",
            "can I exchange order {order} for size {size}?",
            "wrong size, I want to exchange rather than get a refund",
            "is it possible to replace the {product} with a different model?",
        ),
        (
            "czy mogę wymienić {product_pl} na większy rozmiar?",
            "chcę wymienić na inny kolor, zamówienie {order}",
            "rozmiar nie pasuje, proszę o wymianę na {size}",
        ),
    ),
    ("Account", "Password reset"): (
        (
            "I can't log in, the password reset email never arrives",
            "forgot my password and the reset link says it expired",
            "locked out of my account after too many attempts",
            "reset password link doesn't work on my phone",
            "I'm not getting the email to set a new password, checked spam",
        ),
        (
            "nie mogę się zalogować, mail do resetu hasła nie przychodzi",
            "zapomniałem hasła a link do resetu wygasł",
            "konto zablokowane po kilku próbach logowania",
        ),
    ),
    ("Account", "Change details"): (
        (
            "please change the phone number on my account",
            "I need to update my email address, I have a new one",
            "how do I change my name on the account? I got married",
            "update my billing details please, new company address",
            "can you change the email on my profile to {email}?",
        ),
        (
            "proszę zmienić numer telefonu na moim koncie",
            "chcę zaktualizować adres e-mail w profilu",
            "jak zmienić dane na koncie?",
        ),
    ),
    ("Product question", "Availability"): (
        (
            "when will the {product} be back in stock?",
            "is the {colour} {product} available again before {date}?",
            "do you have the {product} in stock in size {size}?",
            "the {product} says sold out, will you restock it?",
            "can I preorder the {product}?",
        ),
        (
            "kiedy {product_pl} będzie znowu dostępny?",
            "czy macie {product_pl} na stanie w rozmiarze {size}?",
            "produkt jest wyprzedany, czy będzie dostawa?",
        ),
    ),
    ("Product question", "Sizing"): (
        (
            "which size of the {product} should I take? I'm {height} cm",
            "does the {product} run small or large?",
            "I usually wear {size}, what size would fit me in this brand?",
            "what are the measurements of size {size}?",
            "is there a size chart for the {product}?",
        ),
        (
            "jaki rozmiar {product_pl} wybrać? mam {height} cm wzrostu",
            "czy ten model jest mniejszy w rozmiarze?",
            "noszę zwykle {size}, jaki rozmiar będzie pasował?",
        ),
    ),
}

VAGUE = (
    "hi, any news on order {order}?",
    "hello, I have a problem with my order {order}",
    "please call me back about my purchase",
    "can someone help me with order {order}?",
    "I wrote before and nobody answered",
    "dzień dobry, mam problem z zamówieniem {order}",
    "proszę o kontakt w sprawie zamówienia",
)
GREETINGS_EN = ("Hi,", "Hello,", "Good morning,", "Hey", "Dear support,", "Hi there,")
GREETINGS_PL = ("Dzień dobry,", "Witam,", "Cześć,", "Hej,")
CLOSINGS_EN = ("Thanks", "Thank you!", "Regards, {name}", "Best, {name}", "Please help asap", "Cheers")
CLOSINGS_PL = ("Dziękuję", "Pozdrawiam, {name}", "Z góry dzięki", "Proszę o szybką odpowiedź")
CONTEXT_EN = (
    "I ordered on your website last {weekday}.",
    "This is the second time I'm writing.",
    "It was a gift for my sister.",
    "I've been a customer for years.",
    "My order number is {order}.",
    "I bought it with the spring discount code.",
)
CONTEXT_PL = ("Zamawiałam w zeszły {weekday_pl}.", "Piszę już drugi raz.", "To był prezent.")
PRODUCTS = ("parka", "lamp", "armchair", "sneakers", "jacket", "coffee table", "desk chair", "winter boots", "rug")
PRODUCTS_PL = ("fotel", "lampa", "kurtka", "buty", "stolik", "dywan", "krzesło")
COURIERS = ("DHL", "DPD", "InPost", "UPS", "GLS")
COLOURS = ("grey", "black", "navy", "green", "beige")
SIZES = ("S", "M", "L", "XL", "38", "42")
NAMES = ("Anna", "Piotr", "Emily", "James", "Kasia", "Tom", "Zofia", "Mark")
WEEKDAYS = ("Monday", "Tuesday", "Friday", "weekend")
WEEKDAYS_PL = ("poniedziałek", "wtorek", "piątek", "weekend")
DATES = ("Friday", "the 12th", "Monday", "last week", "May 3rd", "yesterday")


def _fill(template: str, rng: random.Random) -> str:
    return template.format(
        order=rng.randint(10000, 99999),
        amount=f"{rng.randint(9, 499)}.{rng.choice(('00', '99', '50'))} {rng.choice(('EUR', 'PLN', 'USD'))}",
        product=rng.choice(PRODUCTS),
        product_pl=rng.choice(PRODUCTS_PL),
        courier=rng.choice(COURIERS),
        colour=rng.choice(COLOURS),
        size=rng.choice(SIZES),
        days=rng.randint(2, 21),
        date=rng.choice(DATES),
        height=rng.randint(155, 198),
        email=f"{rng.choice(NAMES).lower()}{rng.randint(1, 99)}@example.com",
        name=rng.choice(NAMES),
        card=rng.choice(("Visa", "Mastercard", "Amex", "debit card")),
        weekday=rng.choice(WEEKDAYS),
        weekday_pl=rng.choice(WEEKDAYS_PL),
    )


def _typos(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(max(1, len(chars) // 40)):
        i = rng.randrange(len(chars) - 1)
        if chars[i].isalpha() and chars[i + 1].isalpha():
            chars[i], chars[i + 1] = chars[i + 1], chars[i]
    return "".join(chars)


def held_out(label: tuple[str, str], language: str, index: int) -> bool:
    """The phrasings kept out of training to measure how the model copes with wording it never saw.

    The last English and the last Polish opener of every subtopic.
    """
    english, polish = OPENERS[label]
    return index == (len(english) if language == "en" else len(polish)) - 1


def message(label: tuple[str, str], rng: random.Random, *, unseen: bool | None = None) -> str:
    """Write one customer opener for the subtopic ``label``.

    ``unseen`` True uses only the held-out phrasings (see ``held_out``), False only the others, None any.
    """
    english, polish = OPENERS[label]
    pl = rng.random() < 0.25
    language = "pl" if pl else "en"
    choices = [
        i for i in range(len(polish if pl else english)) if unseen is None or held_out(label, language, i) == unseen
    ]
    core_index = rng.choice(choices)
    parts: list[str] = []
    if rng.random() < 0.6:
        parts.append(rng.choice(GREETINGS_PL if pl else GREETINGS_EN))
    if rng.random() < 0.06:
        parts.append(_fill(rng.choice(VAGUE), rng))  # the problem never named: the text alone cannot tell
    else:
        core = _fill((polish if pl else english)[core_index], rng)
        parts.append(core[0].upper() + core[1:] + rng.choice((".", "!", "", "?", "...")))
        if rng.random() < 0.1:
            other = rng.choice([key for key in OPENERS if key != label])
            parts.append("Also " + _fill(rng.choice(OPENERS[other][0]), rng) + ".")
    if rng.random() < 0.35:
        parts.append(_fill(rng.choice(CONTEXT_PL if pl else CONTEXT_EN), rng))
    if rng.random() < 0.5:
        parts.append(_fill(rng.choice(CLOSINGS_PL if pl else CLOSINGS_EN), rng))
    text = " ".join(parts)
    if rng.random() < 0.3:
        text = text.lower()
    if rng.random() < 0.2:
        text = _typos(text, rng)
    return text


def corpus(
    n: int, seed: int = 0, *, label_noise: float = 0.03, unseen: bool | None = None
) -> list[tuple[str, tuple[str, str]]]:
    """Return ``n`` (text, (topic, subtopic)) pairs; subtopics are drawn with uneven, realistic frequencies."""
    rng = random.Random(seed)
    labels = list(OPENERS)
    weights = [rng.uniform(0.4, 1.6) for _ in labels]
    result = []
    for _ in range(n):
        label = rng.choices(labels, weights)[0]
        text = message(label, rng, unseen=unseen)
        if rng.random() < label_noise:  # an agent picked the neighbouring subtopic
            siblings = [key for key in labels if key[0] == label[0] and key != label]
            label = rng.choice(siblings) if siblings else label
        result.append((text, label))
    return result
