"""Named users: passwords hashed with argon2 (argon2-cffi), sign-in with failed attempts counted
and audited, and what each role may do. Roles are cumulative: a supervisor may do all a
technician may, an admin all a supervisor may."""

from __future__ import annotations

import enum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from ganad_clinic.errors import GanadError
from ganad_clinic.store import Store, User, UserRole

MIN_PASSWORD_LENGTH = 8
_HASHER = PasswordHasher()


class Permission(enum.Enum):
    REVIEW = "review slides"
    SIGN = "sign specimens off"
    OVERRIDE = "override an acceptance check"
    OPERATING_POINT = "change the operating point"
    MODEL_SETTINGS = "change the training and model settings"
    MANAGE_USERS = "manage users"


ALLOWED: dict[UserRole, frozenset[Permission]] = {
    UserRole.TECHNICIAN: frozenset({Permission.REVIEW}),
    UserRole.SUPERVISOR: frozenset({Permission.REVIEW, Permission.SIGN, Permission.OVERRIDE,
                                    Permission.OPERATING_POINT, Permission.MODEL_SETTINGS}),
    UserRole.ADMIN: frozenset(Permission),
}


class SignInError(GanadError):
    """A sign-in refused: unknown user, wrong password or a disabled account (the message does not
    say which of the first two, so a name cannot be guessed)."""


class NotAllowedError(GanadError):
    """A user tried what their role does not allow."""


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise GanadError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def add_user(store: Store, name: str, full_name: str, role: UserRole | str, password: str, *, actor: str) -> User:
    """A new user; the name is what they sign in with, the full name what a signature prints."""
    name = name.strip()
    if not name or any(character.isspace() for character in name):
        raise GanadError(f"a user name is one word, not {name!r}")
    return store.add_user(name, full_name.strip() or name, role, hash_password(password), actor=actor)


def sign_in(store: Store, name: str, password: str) -> User:
    """The user, once their password is checked; every failure is counted and audited."""
    user = store.get_user(name)
    if user is None:
        store.record_sign_in(name, False, why="unknown user")
        raise SignInError(f"cannot sign in as {name!r}: unknown user or wrong password")
    if user.disabled:
        store.record_sign_in(name, False, why="disabled")
        raise SignInError(f"user {name!r} is disabled: an admin can enable the account again")
    try:
        _HASHER.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        store.record_sign_in(name, False, why="wrong password")
        raise SignInError(f"cannot sign in as {name!r}: unknown user or wrong password") from None
    store.record_sign_in(name, True)
    return user


def may(user: User, permission: Permission) -> bool:
    return not user.disabled and permission in ALLOWED[user.role]


def require(user: User, permission: Permission) -> None:
    if not may(user, permission):
        raise NotAllowedError(f"{user.name} ({user.role.value}) may not {permission.value}")
