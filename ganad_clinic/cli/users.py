"""`ganad users add|list|disable|enable`: named accounts with roles (technician, supervisor, admin).

The first user of a database must be an admin and needs no one's password; after that an admin
adds and disables users (`--admin NAME`, whose password is the first line of standard input and
the new user's the second)."""

from __future__ import annotations

import argparse
import sys

from ganad_clinic.cli.common import add_store_options, add_user_options, read_passwords
from ganad_clinic.errors import GanadError

ROLES = ("technician", "supervisor", "admin")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("users", help="named users: add, list, disable, enable",
                                   description=__doc__)
    actions = parser.add_subparsers(dest="users_action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="add a user (its password from standard input)")
    add.add_argument("name", help="the name signed in with (one word)")
    add.add_argument("--role", choices=ROLES, required=True)
    add.add_argument("--full-name", default="", help="the name printed on signatures (default: the name)")
    add.add_argument("--admin", metavar="NAME", help="the admin adding the user (not for the first user)")
    add.add_argument("--password-stdin", action="store_true", required=True,
                     help="read the password(s) from standard input: the admin's first, then the new user's")
    listing = actions.add_parser("list", help="the users, their roles and state")
    changes = []
    for name, what in (("disable", "a disabled user cannot sign in or act"), ("enable", "enable a user again")):
        change = actions.add_parser(name, help=what)
        change.add_argument("name")
        add_user_options(change, who="--admin")
        changes.append(change)
    for action in (add, listing, *changes):
        add_store_options(action)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ganad_clinic.screening.users import Permission, add_user, require, sign_in
    from ganad_clinic.store import open_store

    try:
        with open_store(args.db_url, args.home) as store:
            if args.users_action == "list":
                for user in store.list_users():
                    state = "disabled" if user.disabled else "active"
                    print(f"{user.name}\t{user.role.value}\t{state}\t{user.full_name}\t"
                          f"{user.failed_sign_ins} failed sign-ins")
                return 0
            first = not store.list_users()
            if args.users_action == "add" and first:
                if args.role != "admin":
                    raise GanadError("the first user of a database must be an admin (--role admin)")
                [password] = read_passwords(1)
                user = add_user(store, args.name, args.full_name, args.role, password, actor=args.name)
            else:
                admin_name = args.admin if args.users_action == "add" else args.user
                if admin_name is None:
                    raise GanadError("users exist already: an admin adds the next one (--admin NAME)")
                passwords = read_passwords(2 if args.users_action == "add" else 1)
                admin = sign_in(store, admin_name, passwords[0])
                require(admin, Permission.MANAGE_USERS)
                if args.users_action == "add":
                    user = add_user(store, args.name, args.full_name, args.role, passwords[1], actor=admin.name)
                else:
                    user = store.set_user_disabled(args.name, args.users_action == "disable", actor=admin.name)
            print(f"user {user.name} ({user.role.value}) {'disabled' if user.disabled else 'active'}")
            return 0
    except GanadError as error:
        print(f"ganad users {args.users_action}: {error}", file=sys.stderr)
        return 1
