"""Orders: `POST` answers 202 and a worker reserves the stock (project/orders/jobs.py)."""

from flask.views import MethodView

from project.guard import auth_required, current_actor
from project.openapi import Blueprint
from project.orders import service
from project.orders.schemas import (
    IdempotencyHeaderSchema,
    OrderCreateSchema,
    OrderListArgsSchema,
    OrderSchema,
)
from project.pagination import page_of

blp = Blueprint(
    "orders",
    __name__,
    url_prefix="/api/v1/orders",
    description="Orders whose stock is reserved by background workers.",
)
NO_ORDER = (404, "No such order, or another user's.")


@blp.route("")
class Orders(MethodView):
    @blp.doc(operationId="listOrders")
    @auth_required()
    @blp.arguments(OrderListArgsSchema, location="query")
    @blp.response(200, page_of(OrderSchema))
    def get(self, args):
        """List orders: your own; an admin sees all and may filter by user_id."""
        return service.list_orders(current_actor(), **args)

    @blp.doc(operationId="createOrder")
    @auth_required()
    @blp.arguments(OrderCreateSchema)
    @blp.arguments(IdempotencyHeaderSchema, location="headers")
    @blp.response(202, OrderSchema)
    @blp.errors(
        (409, "The Idempotency-Key was used with another body."),
        (422, "An unknown or deleted product, a bad quantity, an empty list."),
    )
    def post(self, body, headers):
        """Place an order: stored pending, its stock reserved by a worker."""
        return service.create_order(current_actor().id, body["items"], headers.get("idempotency_key"))


@blp.route("/<dbint:order_id>")
class OrderDetail(MethodView):
    @blp.doc(operationId="getOrder")
    @auth_required()
    @blp.response(200, OrderSchema)
    @blp.errors(NO_ORDER)
    def get(self, order_id: int):
        """One order (owner or admin)."""
        return service.get_order(order_id, current_actor())


@blp.route("/<dbint:order_id>/pay")
class OrderPay(MethodView):
    @blp.doc(operationId="payOrder")
    @auth_required()
    @blp.response(200, OrderSchema)
    @blp.errors(NO_ORDER, (409, "The order is not reserved."))
    def post(self, order_id: int):
        """Pay a reserved order."""
        return service.pay_order(order_id, current_actor())


@blp.route("/<dbint:order_id>/cancel")
class OrderCancel(MethodView):
    @blp.doc(operationId="cancelOrder")
    @auth_required()
    @blp.response(200, OrderSchema)
    @blp.errors(NO_ORDER, (409, "The order is neither pending nor reserved."))
    def post(self, order_id: int):
        """Cancel a pending or reserved order; reserved stock is returned at once."""
        return service.cancel_order(order_id, current_actor())
