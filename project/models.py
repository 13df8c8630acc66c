"""Imports every model, so Alembic and `db.create_all()` see the whole schema."""

from project.auth.models import AuthSession, LoginFailure, MailSend, UserToken
from project.orders.models import Order, OrderItem
from project.products.models import Product, SyncRun
from project.projects.models import Project, Task, project_members
from project.users.models import User

__all__ = [
    "AuthSession",
    "LoginFailure",
    "MailSend",
    "Order",
    "OrderItem",
    "Product",
    "Project",
    "SyncRun",
    "Task",
    "User",
    "UserToken",
    "project_members",
]
