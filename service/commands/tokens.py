"""`effort tokens add|list|revoke`: the bearer tokens of clients in EFFORT_AUTH_TOKENS_FILE."""

import argparse
from pathlib import Path

from service.settings import Settings
from service.tokens import add_token, check_scopes, list_tokens, revoke_token


def run(args: argparse.Namespace) -> None:
    """Adds a token (printed once, alone on the last line), lists the tokens, or revokes one."""
    path: Path | None = args.file or Settings().auth_tokens_file
    if path is None:
        raise ValueError("set EFFORT_AUTH_TOKENS_FILE or pass --file")
    if args.action in ("add", "revoke") and not args.name:
        raise ValueError(f"{args.action} needs a NAME (see `effort tokens list`)")
    if args.action == "add":
        if not args.scopes:
            raise ValueError("add needs --scopes, e.g. --scopes score,record (of score, record, "
                             "admin)")
        scopes = check_scopes(scope for scope in args.scopes.split(",") if scope.strip())
        token = add_token(path, args.name, scopes)
        print(f"added token {args.name} with scopes {','.join(scopes)} to {path}; it is shown "
              "only this once, so keep it now:")
        print(token)
    elif args.action == "list":
        entries = list_tokens(path)
        if not entries:
            print(f"no tokens in {path}")
            return
        width = max(len("NAME"), *(len(e.name) for e in entries))
        print(f"{'NAME':<{width}}  {'SCOPES':<19}  CREATED")
        for e in entries:
            print(f"{e.name:<{width}}  {','.join(e.scopes):<19}  {e.created}")
    else:
        revoke_token(path, args.name)
        print(f"revoked token {args.name} in {path}; running servers refuse it from their next call")
