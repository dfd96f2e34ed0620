"""``parkvpp users add|list|disable|enable``: who may sign in to the gateway (the first administrator too).

Acts on the database of ``PARKVPP_DATABASE_URL`` (default: the SQLite file under the run
directory). The password is asked for (hidden) unless ``--password-stdin`` reads it from the
first line of standard input, for scripts. Every change is in the audit log.
"""

from __future__ import annotations

import getpass
import sys
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from infra.settings import get_settings

console = Console(soft_wrap=True)
users_app = typer.Typer(help="Gateway users: add, list, disable, enable.", no_args_is_help=True)


def _engine() -> Any:
    from infra.db import make_engine, migrate

    url = get_settings().resolved_database_url
    migrate(url)
    return make_engine(url)


@users_app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="sign-in name")],
    role: Annotated[str, typer.Option("--role", help="admin, operator, trader, enterprise or auditor")],
    park: Annotated[
        str | None, typer.Option("--park", help="bind the user to one park (enterprise users: required)")
    ] = None,
    enterprise: Annotated[
        str | None, typer.Option("--enterprise", help="the enterprise of an enterprise user")
    ] = None,
    name: Annotated[str, typer.Option("--name", help="display name")] = "",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="read the password from stdin")
    ] = False,
    by: Annotated[
        str | None, typer.Option("--by", help="who adds the user (default: your login name)")
    ] = None,
) -> None:
    """Add a user with an argon2-hashed password."""
    from gateway.identity import IdentityError, add_user

    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("password: ")
        if getpass.getpass("again: ") != password:
            console.print("[red]error:[/] the passwords differ")
            raise typer.Exit(2)
    try:
        user = add_user(
            _engine(),
            username,
            password,
            role,
            actor=by or getpass.getuser(),
            park_id=park,
            enterprise_id=enterprise,
            display_name=name,
        )
    except IdentityError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{user['username']}: {user['role']} added")


@users_app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="one JSON list")] = False) -> None:
    """List users (never their password hashes)."""
    import json

    from gateway.identity import list_users

    users = list_users(_engine())
    if as_json:
        typer.echo(json.dumps(users, default=str))
        return
    table = Table(title="gateway users")
    for col in ("user", "role", "park", "enterprise", "disabled", "created"):
        table.add_column(col)
    for u in users:
        table.add_row(
            u["username"],
            u["role"],
            u["park_id"] or "*",
            u["enterprise_id"] or "",
            str(u["disabled"]),
            str(u["created_at"])[:19],
        )
    console.print(table)


def _set(username: str, disabled: bool, by: str | None) -> None:
    from gateway.identity import IdentityError, set_disabled

    try:
        set_disabled(_engine(), username, disabled, actor=by or getpass.getuser())
    except IdentityError as exc:
        console.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    console.print(f"{username}: {'disabled' if disabled else 'enabled'}")


@users_app.command("disable")
def disable(username: str, by: Annotated[str | None, typer.Option("--by", help="who acts")] = None) -> None:
    """Disable a user: sign-in and refresh stop at once."""
    _set(username, True, by)


@users_app.command("enable")
def enable(username: str, by: Annotated[str | None, typer.Option("--by", help="who acts")] = None) -> None:
    _set(username, False, by)


def register(app: typer.Typer, bench: typer.Typer) -> None:
    app.add_typer(users_app, name="users")
