"""`auth.AuthService`: ValidateToken runs the REST API's own token check (`check_token`).

Answered from the user's columns the check read: no ORM object, no Flask request, one app
context per call (the token check reads the app's engine and JWT settings).
"""

from __future__ import annotations

import logging

import grpc
from flask import Flask
from google.protobuf.message import DecodeError
from sqlalchemy.exc import DataError, SQLAlchemyError

from project.auth.sessions import check_token
from project.errors import AppError
from project.redis_client import REDIS_ERRORS
from project.rpc.generated import auth_pb2, auth_pb2_grpc

log = logging.getLogger(__name__)

# A JWT of ours is a few hundred bytes; anything much longer is not one.
MAX_TOKEN_LENGTH = 8192


class AuthService(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, app: Flask):
        self.app = app

    def ValidateToken(self, request, context):  # noqa: N802 (the generated name)
        if request is UNDECODABLE:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT, "Not a ValidateTokenRequest (the token must be UTF-8)."
            )
        token = request.token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if not token:
            return invalid("A token is required.")
        if len(token) > MAX_TOKEN_LENGTH:
            return invalid("Invalid token.")
        try:
            with self.app.app_context():
                user, claims = check_token(token, "access")
                return auth_pb2.ValidateTokenResponse(
                    valid=True,
                    user_id=user["id"],
                    email=user["email"],
                    role=user["role"],
                    expires_at=int(claims["exp"]),
                )
        except AppError as exc:
            return invalid(exc.message)
        except DataError:
            # PostgreSQL refused a value the token carried (an id out of range): the token's fault.
            return invalid("Invalid token.")
        except (SQLAlchemyError, *REDIS_ERRORS) as exc:
            # Not the token's fault (database down, failing over, a pooler's hiccup): the caller
            # may retry, so UNAVAILABLE, never "invalid" (API.md).
            log.error("token check unavailable: %s", exc.__class__.__name__)
            context.abort(grpc.StatusCode.UNAVAILABLE, "The token store is unavailable, try again later.")
        except Exception:
            # A bug of ours is not a verdict on the token either.
            log.exception("token check failed")
            context.abort(grpc.StatusCode.INTERNAL, "The token check failed.")


def invalid(error: str) -> auth_pb2.ValidateTokenResponse:
    return auth_pb2.ValidateTokenResponse(valid=False, error=error)


# What `_request` gives for bytes that are no ValidateTokenRequest (not None: gRPC takes a
# None request for a failed deserializer, and answers INTERNAL).
UNDECODABLE = object()


def _request(data: bytes) -> object:
    """The request, or UNDECODABLE (a token of invalid UTF-8, say): gRPC would answer a
    deserializer's exception with INTERNAL, and the fault is the caller's: INVALID_ARGUMENT."""
    try:
        return auth_pb2.ValidateTokenRequest.FromString(data)
    except DecodeError:
        return UNDECODABLE


def add_auth_service(app: Flask, server: grpc.Server) -> None:
    """The generated `add_AuthServiceServicer_to_server`, with `_request` as the deserializer."""
    handlers = {
        "ValidateToken": grpc.unary_unary_rpc_method_handler(
            AuthService(app).ValidateToken,
            request_deserializer=_request,
            response_serializer=auth_pb2.ValidateTokenResponse.SerializeToString,
        )
    }
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("auth.AuthService", handlers),))
    server.add_registered_method_handlers("auth.AuthService", handlers)
