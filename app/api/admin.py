"""Staff administration: users and teams (admins change them, agents read them), and one's own profile."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify
from flask_login import current_user
from pydantic import Field

from app.api.auth import role_required
from app.api.fields import DbId, Input, Query
from app.api.validation import documented, validate
from app.models.user import ROLES
from app.serializers import team_dict, user_dict
from app.services.staff import (
    create_staff_user,
    create_team,
    get_team,
    get_user,
    list_teams,
    list_users,
    update_me,
    update_team,
    update_user,
)

bp = Blueprint("admin", __name__, url_prefix="/api/v1")

EMAIL = r"^[^@\s]+@[^@\s]+$"
LOCALE = r"^[a-z]{2}(-[A-Za-z]{2,4})?$"


class UserQuery(Query):
    active: bool | None = Field(default=None, description="true: only active users; false: only deactivated")


class UserCreate(Input):
    email: str = Field(min_length=3, max_length=255, pattern=EMAIL)
    name: str = Field(min_length=1, max_length=255)
    password: str = Field(min_length=8, max_length=1024)
    role: str = Field(default="agent", pattern=f"^({'|'.join(ROLES)})$")
    phone: str | None = Field(default=None, max_length=32, description="where calls ring this agent")
    client_identity: str | None = Field(default=None, max_length=120, description="Twilio Client identity")
    team_ids: list[DbId] = Field(default_factory=list)


class UserPatch(Input):
    email: str | None = Field(default=None, min_length=3, max_length=255, pattern=EMAIL)
    name: str | None = Field(default=None, min_length=1, max_length=255)
    role: str | None = Field(default=None, pattern=f"^({'|'.join(ROLES)})$")
    active: bool | None = None
    phone: str | None = Field(default=None, max_length=32)
    client_identity: str | None = Field(default=None, max_length=120)
    team_ids: list[DbId] | None = None
    password: str | None = Field(default=None, min_length=8, max_length=1024, description="sets a new password")


class MePatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    locale: str | None = Field(default=None, max_length=8, pattern=LOCALE)
    available: bool | None = Field(default=None, description="whether you take new conversations and calls")


class TeamCreate(Input):
    name: str = Field(min_length=1, max_length=255)
    member_ids: list[DbId] = Field(default_factory=list)


class TeamPatch(Input):
    name: str | None = Field(default=None, min_length=1, max_length=255)
    member_ids: list[DbId] | None = None


@bp.get("/users")
@role_required("agent")
@validate(query=UserQuery)
@documented(summary="Staff accounts (for assignment and mentions; no secrets)")
def users(query: UserQuery) -> Any:
    """List staff accounts by name."""
    return jsonify(items=[user_dict(user) for user in list_users(active=query.active)])


@bp.post("/users")
@role_required("admin")
@validate(body=UserCreate)
@documented(summary="Create a staff account")
def create_user(body: UserCreate) -> Any:
    """Create a staff account with its role, teams and phone."""
    user = create_staff_user(
        body.email,
        body.name,
        body.password,
        body.role,
        phone=body.phone,
        client_identity=body.client_identity,
        team_ids=body.team_ids,
        actor_id=current_user.id,
    )
    return jsonify(user_dict(user)), 201


@bp.get("/users/<int:user_id>")
@role_required("agent")
@documented(summary="One staff account")
def user_detail(user_id: int) -> Any:
    """Show one staff account."""
    return jsonify(user_dict(get_user(user_id)))


@bp.patch("/users/<int:user_id>")
@role_required("admin")
@validate(body=UserPatch)
@documented(summary="Change a staff account: role, active, name, email, phone, client identity, teams, password")
def patch_user(user_id: int, body: UserPatch) -> Any:
    """Change a staff account."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    return jsonify(user_dict(update_user(user_id, changes, actor_id=current_user.id)))


@bp.patch("/me")
@role_required("agent")
@validate(body=MePatch)
@documented(summary="Change your own name, locale or availability (availability is announced live)")
def patch_me(body: MePatch) -> Any:
    """Change the logged-in user's own profile."""
    changes = {field: getattr(body, field) for field in body.model_fields_set}
    user = update_me(get_user(current_user.id), changes)
    return jsonify(user_dict(user))


@bp.get("/teams")
@role_required("agent")
@documented(summary="Teams and their members")
def teams() -> Any:
    """List teams by name."""
    return jsonify(items=[team_dict(team) for team in list_teams()])


@bp.post("/teams")
@role_required("admin")
@validate(body=TeamCreate)
@documented(summary="Create a team")
def create_team_view(body: TeamCreate) -> Any:
    """Create a team with its members."""
    return jsonify(team_dict(create_team(body.name, body.member_ids, actor_id=current_user.id))), 201


@bp.get("/teams/<int:team_id>")
@role_required("agent")
@documented(summary="One team")
def team_detail(team_id: int) -> Any:
    """Show one team."""
    return jsonify(team_dict(get_team(team_id)))


@bp.patch("/teams/<int:team_id>")
@role_required("admin")
@validate(body=TeamPatch)
@documented(summary="Rename a team or replace its members")
def patch_team(team_id: int, body: TeamPatch) -> Any:
    """Change a team's name or members."""
    team = update_team(team_id, name=body.name, member_ids=body.member_ids, actor_id=current_user.id)
    return jsonify(team_dict(team))
