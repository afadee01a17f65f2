"""Staff accounts: create, authenticate, bootstrap the first admin."""

from __future__ import annotations

import logging
import secrets

from sqlalchemy import func, select

from app.events import PRESENCE_UPDATED, Event, publish
from app.extensions import db
from app.models import ROLES_TUPLE, Team, User, utcnow
from app.services.errors import Conflict, NotFound, ValidationFailed

log = logging.getLogger(__name__)

# A fixed dummy hash so a login for an unknown email costs the same time as a wrong password.
_DUMMY = User(email="", name="", password_hash="")
_DUMMY.set_password(secrets.token_urlsafe(16))


def authenticate(email: str, password: str) -> User | None:
    """Return the active user with this email and password, else None."""
    user = db.session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))
    if user is None:
        _DUMMY.check_password(password)
        return None
    if not user.check_password(password) or not user.active:
        return None
    return user


def create_user(
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    *,
    phone: str | None = None,
    team_ids: list[int] | None = None,
) -> User:
    """Create a staff account; raise Conflict when the email is taken."""
    email = email.strip().lower()
    if role not in ROLES_TUPLE:
        raise ValidationFailed(f"unknown role {role!r}", fields={"role": f"one of {', '.join(ROLES_TUPLE)}"})
    if len(password) < 8:
        raise ValidationFailed("password too short", fields={"password": "at least 8 characters"})
    if db.session.scalar(select(User.id).where(func.lower(User.email) == email)) is not None:
        raise Conflict(f"a user with email {email} already exists", fields={"email": "already taken"})
    user = User(email=email, name=name, role=role, phone=phone)
    user.set_password(password)
    for team_id in team_ids or []:
        team = db.session.get(Team, team_id)
        if team is None:
            raise NotFound(f"team {team_id} not found", fields={"team_ids": f"unknown team {team_id}"})
        user.teams.append(team)
    db.session.add(user)
    db.session.commit()
    return user


def ensure_admin(email: str, password: str | None) -> tuple[User | None, str | None]:
    """Create the first admin when there are no users; return it and the generated password, if any."""
    if db.session.scalar(select(func.count(User.id))):
        return None, None
    generated = None
    if not password:
        password = generated = secrets.token_urlsafe(12)
    user = create_user(email, "Administrator", password, "admin")
    return user, generated


def set_availability(user_id: int, available: bool) -> User:
    """Set whether an agent takes new conversations and calls; tell every console."""
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    user.available = available
    user.last_seen_at = utcnow()
    publish(db.session, Event(PRESENCE_UPDATED, {"user_id": user.id, "available": available}))
    db.session.commit()
    return user
