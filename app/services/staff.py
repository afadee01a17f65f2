"""Administering staff: change accounts, build teams, and let agents change their own profile."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from flask import current_app
from sqlalchemy import func, select

from app.extensions import db
from app.models import ROLES_TUPLE, AuditLog, Team, User
from app.services.errors import Conflict, NotFound, ValidationFailed
from app.services.users import create_user, set_availability
from connectors.base import Identity, InvalidIdentity

USER_FIELDS = ("email", "name", "role", "active", "phone", "client_identity", "team_ids", "password")
MIN_PASSWORD = 8


def normalize_phone(phone: str | None) -> str | None:
    """Return the staff phone in E.164 (calls ring it), None for blank; raise ValidationFailed when invalid."""
    if not phone or not phone.strip():
        return None
    try:
        return Identity.parse("phone", phone, current_app.config["DEFAULT_PHONE_REGION"]).value
    except InvalidIdentity as exc:
        raise ValidationFailed(str(exc), fields={"phone": exc.reason}) from None


def _teams(team_ids: Iterable[int], field: str = "team_ids") -> list[Team]:
    wanted = list(dict.fromkeys(team_ids))
    teams = {team.id: team for team in db.session.scalars(select(Team).where(Team.id.in_(wanted)))} if wanted else {}
    missing = [team_id for team_id in wanted if team_id not in teams]
    if missing:
        raise NotFound(f"team {missing[0]} not found", fields={field: f"unknown team {missing[0]}"})
    return [teams[team_id] for team_id in wanted]


def _users(user_ids: Iterable[int], field: str = "member_ids") -> list[User]:
    wanted = list(dict.fromkeys(user_ids))
    users = {user.id: user for user in db.session.scalars(select(User).where(User.id.in_(wanted)))} if wanted else {}
    missing = [user_id for user_id in wanted if user_id not in users]
    if missing:
        raise NotFound(f"user {missing[0]} not found", fields={field: f"unknown user {missing[0]}"})
    return [users[user_id] for user_id in wanted]


def _audit(actor_id: int | None, action: str, target_type: str, target_id: int, data: dict[str, Any]) -> None:
    db.session.add(AuditLog(actor_id=actor_id, action=action, target_type=target_type, target_id=target_id, data=data))


def list_users(*, active: bool | None = None) -> list[User]:
    """Return staff accounts by name, optionally only active (or only deactivated) ones."""
    query = select(User).order_by(func.lower(User.name), User.id)
    if active is not None:
        query = query.where(User.active.is_(active))
    return list(db.session.scalars(query))


def get_user(user_id: int) -> User:
    user = db.session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def create_staff_user(
    email: str,
    name: str,
    password: str,
    role: str = "agent",
    *,
    phone: str | None = None,
    client_identity: str | None = None,
    team_ids: list[int] | None = None,
    actor_id: int | None = None,
) -> User:
    """Create a staff account with its phone, Twilio Client identity and teams; raise Conflict on a taken email."""
    phone = normalize_phone(phone)
    _teams(team_ids or [])  # checked up front so a bad team id creates nothing
    user = create_user(email, name, password, role, phone=phone, team_ids=team_ids)
    user.client_identity = client_identity or None
    _audit(actor_id, "user.created", "user", user.id, {"email": user.email, "role": user.role})
    db.session.commit()
    return user


def _active_admins_besides(user_id: int) -> int:
    return int(
        db.session.scalar(
            select(func.count(User.id)).where(User.role == "admin", User.active.is_(True), User.id != user_id)
        )
        or 0
    )


def update_user(user_id: int, changes: Mapping[str, Any], *, actor_id: int | None = None) -> User:
    """Change a staff account: any of email, name, role, active, phone, client_identity, team_ids, password.

    Refuses to demote or deactivate the last active admin, so nobody can lock everyone out of settings.
    """
    unknown = sorted(set(changes) - set(USER_FIELDS))
    if unknown:
        raise ValidationFailed("unknown fields", fields=dict.fromkeys(unknown, "cannot be changed"))
    user = get_user(user_id)
    updates = dict(changes)
    if "role" in updates and updates["role"] not in ROLES_TUPLE:
        raise ValidationFailed("unknown role", fields={"role": f"one of {', '.join(ROLES_TUPLE)}"})
    for field in ("name", "role", "active", "email"):
        if field in updates and updates[field] is None:
            raise ValidationFailed(f"{field} cannot be empty", fields={field: "required"})
    if "email" in updates:
        email = updates["email"].strip().lower()
        taken = db.session.scalar(select(User.id).where(func.lower(User.email) == email, User.id != user.id))
        if taken is not None:
            raise Conflict(f"a user with email {email} already exists", fields={"email": "already taken"})
        updates["email"] = email
    if "phone" in updates:
        updates["phone"] = normalize_phone(updates["phone"])
    if "client_identity" in updates:
        updates["client_identity"] = (updates["client_identity"] or "").strip() or None
    password = updates.pop("password", None)
    if "password" in changes and (password is None or len(password) < MIN_PASSWORD):
        raise ValidationFailed("password too short", fields={"password": f"at least {MIN_PASSWORD} characters"})
    teams = _teams(updates.pop("team_ids") or []) if "team_ids" in updates else None
    stays_admin = updates.get("role", user.role) == "admin" and updates.get("active", user.active)
    if user.role == "admin" and user.active and not stays_admin and _active_admins_besides(user.id) == 0:
        raise Conflict("this is the last active admin", code="last_admin", fields={"role": "keep at least one admin"})

    for field, value in updates.items():
        setattr(user, field, value)
    if password is not None:
        user.set_password(password)
    if teams is not None:
        user.teams = teams
    changed = sorted(set(changes))
    _audit(actor_id, "user.updated", "user", user.id, {"fields": changed})
    if updates.get("active") is False and user.available:
        return set_availability(user.id, False)  # commits; a deactivated agent takes nothing new
    db.session.commit()
    return user


def update_me(user: User, changes: Mapping[str, Any]) -> User:
    """Let a user change their own name, locale and availability (availability is announced to everyone)."""
    unknown = sorted(set(changes) - {"name", "locale", "available"})
    if unknown:
        raise ValidationFailed("unknown fields", fields=dict.fromkeys(unknown, "cannot be changed"))
    for field in ("name", "locale", "available"):
        if field in changes and changes[field] is None:
            raise ValidationFailed(f"{field} cannot be empty", fields={field: "required"})
    if "name" in changes:
        user.name = changes["name"]
    if "locale" in changes:
        user.locale = changes["locale"]
    if "available" in changes and changes["available"] != user.available:
        return set_availability(user.id, changes["available"])  # commits the other changes too
    db.session.commit()
    return user


def list_teams() -> list[Team]:
    return list(db.session.scalars(select(Team).order_by(func.lower(Team.name), Team.id)))


def get_team(team_id: int) -> Team:
    team = db.session.get(Team, team_id)
    if team is None:
        raise NotFound(f"team {team_id} not found")
    return team


def _check_team_name(name: str, exclude_id: int | None = None) -> str:
    name = name.strip()
    if not name:
        raise ValidationFailed("a team needs a name", fields={"name": "required"})
    query = select(Team.id).where(func.lower(Team.name) == name.lower())
    if exclude_id is not None:
        query = query.where(Team.id != exclude_id)
    if db.session.scalar(query) is not None:
        raise Conflict(f"a team named {name!r} already exists", fields={"name": "already used"})
    return name


def create_team(name: str, member_ids: list[int] | None = None, *, actor_id: int | None = None) -> Team:
    """Create a team with its members."""
    name = _check_team_name(name)
    members = _users(member_ids or [])
    team = Team(name=name, members=members)
    db.session.add(team)
    db.session.flush()
    _audit(actor_id, "team.created", "team", team.id, {"name": name, "member_ids": [m.id for m in members]})
    db.session.commit()
    return team


def update_team(
    team_id: int, *, name: str | None = None, member_ids: list[int] | None = None, actor_id: int | None = None
) -> Team:
    """Rename a team and/or replace its members."""
    team = get_team(team_id)
    new_name = _check_team_name(name, exclude_id=team.id) if name is not None else None
    members = _users(member_ids) if member_ids is not None else None
    if new_name is not None:
        team.name = new_name
    if members is not None:
        team.members = members
    _audit(
        actor_id,
        "team.updated",
        "team",
        team.id,
        {"name": team.name, "member_ids": [m.id for m in team.members]},
    )
    db.session.commit()
    return team
