"""Auth: registration, login, sessions and tokens, emailed links.

Above users in the accounts layer: auth reads and creates users; users reaches auth's
sessions and emails only through the hooks installed here.
"""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Install auth's token check in the route guard and its account hooks in users."""
    from project.auth.emails import queue_email_changed_notice, queue_verification_email
    from project.auth.limits import account_identifiers, guarded_password_check, require_mails
    from project.auth.sessions import actor_for_token, revoke_sessions
    from project.auth.tokens import RESET, retire_links, retire_tokens
    from project.guard import install_token_check
    from project.passwords import verify_password
    from project.users.hooks import AccountHooks, install_account_hooks

    install_token_check(app, actor_for_token)
    install_account_hooks(
        app,
        AccountHooks(
            end_sessions=lambda user_id, keep: revoke_sessions(user_id=user_id, keep=keep),
            retire_reset_tokens=lambda user_id: retire_tokens(user_id, RESET),
            retire_links=retire_links,
            check_password=lambda user, password, ip: guarded_password_check(
                account_identifiers(user.email, user.username),
                ip,
                lambda: verify_password(user.password_hash, password),
            ),
            reserve_mails=require_mails,
            send_verification=queue_verification_email,
            notify_email_changed=queue_email_changed_notice,
        ),
    )
