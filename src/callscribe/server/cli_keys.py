"""``callscribe keys create|list|revoke``: API keys kept in the call store (only their sha256 is stored)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from callscribe.server.scopes import SCOPES

keys_app = typer.Typer(help="API keys for callscribe serve, kept in the call store.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)

DB_HELP = "Database URL, as for serve --db (default: $CALLSCRIBE_DB)."
DbOption = Annotated[str | None, typer.Option("--db", envvar="CALLSCRIBE_DB", help=DB_HELP, show_envvar=False)]
DATA_HELP = "The server's --data-dir, which keeps key webhooks (default: $CALLSCRIBE_DATA_DIR, else callscribe-data)."
DataOption = Annotated[
    Path, typer.Option("--data-dir", envvar="CALLSCRIBE_DATA_DIR", help=DATA_HELP, show_envvar=False)
]


def parse_scopes(spec: str) -> str:
    """``ingest,review`` → the same, checked and in a fixed order; one-line ``ValueError`` for an unknown scope."""
    given = [s.strip().lower() for s in spec.split(",") if s.strip()]
    unknown = sorted(set(given) - set(SCOPES))
    if unknown or not given:
        raise ValueError(f"--scope: unknown scope {', '.join(unknown) or '(none)'}; use some of {', '.join(SCOPES)}")
    return ",".join(s for s in SCOPES if s in given)


@keys_app.command("create")
def create_command(
    name: Annotated[str | None, typer.Argument(help="A name for the key (who or what uses it).")] = None,
    name_option: Annotated[str | None, typer.Option("--name", help="The same as NAME.")] = None,
    scope: Annotated[str, typer.Option(help=f"Comma-separated scopes: {', '.join(SCOPES)}.")] = "ingest",
    webhook: Annotated[
        str | None, typer.Option("--webhook", help="POST here when a call job this key sent ends.")
    ] = None,
    db: DbOption = None,
    data_dir: DataOption = Path("callscribe-data"),
) -> None:
    """Create a key and print it once (it cannot be shown again)."""
    from callscribe.cli import fail
    from callscribe.cli_store import open_store
    from callscribe.server.webhook_keys import KeyWebhooks
    from callscribe.server.webhooks import check_url

    if name is not None and name_option is not None and name != name_option:
        raise fail(f"two names given: {name!r} and --name {name_option!r}")
    name = name if name is not None else name_option
    if not name or not name.strip():
        raise fail("a key needs a name: callscribe keys create NAME (or --name NAME)")
    try:
        scopes = parse_scopes(scope)
    except ValueError as exc:
        raise fail(str(exc)) from None
    try:
        webhook = check_url(webhook) if webhook is not None else None
    except ValueError as exc:
        raise fail(f"--webhook: {exc}") from None
    hooks = KeyWebhooks.in_data_dir(data_dir)
    store = open_store(db)
    try:
        if any(k.name == name for k in store.api_keys()):
            raise fail(f"an API key named {name!r} exists")
        if webhook is not None:  # before the key: a key never exists without the webhook it was given
            try:
                hooks.set(name, webhook)
            except OSError as exc:
                raise fail(f"--data-dir {data_dir}: cannot keep the webhook ({exc.strerror or exc})") from None
        try:
            record, key = store.create_key(name, scope=scopes)
        except BaseException:
            if webhook is not None:
                hooks.set(name, None)
            raise
    except ValueError as exc:
        raise fail(str(exc)) from None
    finally:
        store.close()
    if webhook is not None:
        err.print(f"webhook {escape(webhook)} kept in {escape(str(hooks.path))}", highlight=False)
    err.print(f"key {escape(record.name)} ({escape(scopes)}); keep it now, it is not shown again:", highlight=False)
    out.print(key, highlight=False, soft_wrap=True)


@keys_app.command("list")
def list_command(db: DbOption = None, data_dir: DataOption = Path("callscribe-data")) -> None:
    """The keys: name, scopes, prefix, created, revoked, webhook."""
    from callscribe.cli_store import open_store
    from callscribe.server.webhook_keys import KeyWebhooks

    store = open_store(db)
    try:
        keys = store.api_keys()
    finally:
        store.close()
    hooks = KeyWebhooks.in_data_dir(data_dir).urls()
    table = Table("name", "scopes", "prefix", "created", "revoked", "webhook", box=None)
    for k in keys:
        revoked = k.revoked_at.isoformat(timespec="seconds") if k.revoked_at else ("yes" if k.revoked else "")
        created = k.created_at.isoformat(timespec="seconds")
        table.add_row(escape(k.name), k.scope, k.prefix + "…", created, revoked, escape(hooks.get(k.name, "")))
    out.print(table)


@keys_app.command("revoke")
def revoke_command(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    db: DbOption = None,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from callscribe.cli import fail
    from callscribe.cli_store import open_store

    store = open_store(db)
    try:
        revoked = store.revoke_key(name)
    finally:
        store.close()
    if not revoked:
        raise fail(f"no active key named {name!r}")
    err.print(f"key {escape(name)} revoked", highlight=False)
