"""Authentication and authorisation: session login, CSRF on cookie-authenticated writes, role checks."""

from __future__ import annotations

import functools
import hmac
import secrets
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Blueprint, Flask, current_app, jsonify, request, session
from flask_login import current_user, login_user, logout_user
from pydantic import Field

from app.api.errors import ApiError
from app.api.validation import Schema, documented, validate
from app.extensions import db, limiter, login_manager
from app.models import User
from app.serializers import user_dict

F = TypeVar("F", bound=Callable[..., Any])

CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

bp = Blueprint("auth", __name__, url_prefix="/api/v1/auth")


def public(view: F) -> F:
    """Mark a view as deliberately reachable without a login (it must authenticate some other way)."""
    view.is_public = True  # type: ignore[attr-defined]
    return view


def role_required(role: str) -> Callable[[F], F]:
    """Refuse anonymous requests (401) and users below ``role`` (403)."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                raise ApiError(401, "unauthorized", "Log in first.")
            if not current_user.has_role(role):
                raise ApiError(403, "forbidden", f"This needs the {role} role.")
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorator


def csrf_token() -> str:
    """Return this session's CSRF token, creating it on first use."""
    token = session.get("csrf_token")
    if not token:
        token = session["csrf_token"] = secrets.token_urlsafe(32)
    return str(token)


def _check_csrf() -> None:
    """Cookie-authenticated writes must carry the session's token in a header a foreign site cannot set."""
    if request.method not in UNSAFE_METHODS or not current_user.is_authenticated:
        return
    view = current_app.view_functions.get(request.endpoint or "")
    if view is not None and getattr(view, "is_public", False):
        return
    sent = request.headers.get(CSRF_HEADER, "")
    expected = session.get("csrf_token", "")
    if not sent or not expected or not hmac.compare_digest(sent, expected):
        raise ApiError(403, "csrf_failed", f"Missing or wrong {CSRF_HEADER} header.")


@login_manager.user_loader
def _load_user(user_id: str) -> User | None:
    user = db.session.get(User, int(user_id))
    return user if user is not None and user.active else None


@login_manager.unauthorized_handler
def _unauthorized() -> Any:
    raise ApiError(401, "unauthorized", "Log in first.")


class LoginBody(Schema):
    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


def _login_limit() -> str:
    return str(current_app.config["LOGIN_RATE_LIMIT"])


@bp.post("/login")
@public
@limiter.limit(_login_limit, methods=["POST"])
@validate(body=LoginBody)
@documented(summary="Log in with email and password; sets the session cookie and returns the CSRF token")
def login(body: LoginBody) -> Any:
    """Log in a user by email and password."""
    from app.services.users import authenticate

    user = authenticate(body.email, body.password)
    if user is None:
        raise ApiError(401, "invalid_credentials", "Wrong email or password.")
    session.clear()  # a fresh session on login prevents session fixation
    login_user(user)
    return jsonify(user=user_dict(user), csrf_token=csrf_token(), csrf_header=CSRF_HEADER)


@bp.post("/logout")
@role_required("agent")
@documented(summary="Log out")
def logout() -> Any:
    """End the current session."""
    logout_user()
    session.clear()
    return jsonify(ok=True)


@bp.get("/me")
@role_required("agent")
@documented(summary="The logged-in user and the CSRF token")
def me() -> Any:
    """Return the logged-in user."""
    return jsonify(user=user_dict(current_user), csrf_token=csrf_token(), csrf_header=CSRF_HEADER)


def init_app(app: Flask) -> None:
    app.before_request(_check_csrf)
    app.register_blueprint(bp)
