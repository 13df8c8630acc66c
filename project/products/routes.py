"""Products: the public catalogue (cached reads) and its admin writes and sync."""

from flask.views import MethodView
from flask_smorest import Blueprint

from project.caching import cached_response
from project.guard import Role, auth_required
from project.pagination import page_of
from project.products import service, sync
from project.products.schemas import (
    ProductInSchema,
    ProductListArgs,
    ProductPatchSchema,
    ProductSchema,
    ProductSearchArgs,
    StockDeltaSchema,
    SyncJobSchema,
    SyncStatusSchema,
)

blp = Blueprint(
    "products",
    __name__,
    url_prefix="/api/v1/products",
    description="The product catalogue, synced from the upstream catalogue.",
)

ADMIN_ERRORS = ((401, "Missing or invalid token."), (403, "Admin only."))
CACHE_HEADERS = {
    "X-Cache": {"description": "HIT or MISS"},
    "ETag": {"description": "Send it back in If-None-Match: a match is a 304 with no body"},
}


def cached(kind, query=None):
    return cached_response(service.NAMESPACE, kind, "PRODUCTS_CACHE_TTL", query)


def admin_docs(func):
    for code, description in ADMIN_ERRORS:
        func = blp.alt_response(code, description=description)(func)
    return func


@blp.route("")
class Products(MethodView):
    @cached("list", ProductListArgs)
    @blp.arguments(ProductListArgs, location="query")
    @blp.response(200, page_of(ProductSchema), headers=CACHE_HEADERS)
    def get(self, args):
        """List products: filters, sort and pagination (cached)."""
        return service.list_products(**args)

    @auth_required(Role.ADMIN)
    @blp.arguments(ProductInSchema)
    @blp.response(201, ProductSchema)
    @blp.alt_response(409, description="SKU already taken.")
    @admin_docs
    def post(self, data):
        """Create a product (admin)."""
        return service.create_product(data)


@blp.route("/search")
class ProductSearch(MethodView):
    @cached("search", ProductSearchArgs)
    @blp.arguments(ProductSearchArgs, location="query")
    @blp.response(200, page_of(ProductSchema), headers=CACHE_HEADERS)
    def get(self, args):
        """Search products by name, description and category (cached)."""
        return service.search_products(**args)


@blp.route("/sync")
class ProductSync(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(202, SyncJobSchema)
    @blp.alt_response(503, description="The job queue is down.")
    @admin_docs
    def post(self):
        """Pull the upstream catalogue now (admin); answers the job id."""
        return sync.start_sync()


@blp.route("/sync/status")
class ProductSyncStatus(MethodView):
    @auth_required(Role.ADMIN)
    @blp.response(200, SyncStatusSchema)
    @admin_docs
    def get(self):
        """The last sync run (admin)."""
        return sync.sync_status()


@blp.route("/<dbint:product_id>")
class ProductItem(MethodView):
    @cached("detail")
    @blp.response(200, ProductSchema, headers=CACHE_HEADERS)
    @blp.alt_response(404, description="No such product.")
    def get(self, product_id):
        """One product (cached); a deleted product is 404."""
        return service.get_product(product_id)

    @auth_required(Role.ADMIN)
    @blp.arguments(ProductInSchema)
    @blp.response(200, ProductSchema)
    @blp.alt_response(404, description="No such product.")
    @blp.alt_response(409, description="SKU already taken.")
    @admin_docs
    def put(self, data, product_id):
        """Replace a product (admin); omitted optional fields take their defaults."""
        return service.update_product(product_id, data)

    @auth_required(Role.ADMIN)
    @blp.arguments(ProductPatchSchema)
    @blp.response(200, ProductSchema)
    @blp.alt_response(404, description="No such product.")
    @blp.alt_response(409, description="SKU already taken.")
    @admin_docs
    def patch(self, data, product_id):
        """Update some fields of a product (admin)."""
        return service.update_product(product_id, data)

    @auth_required(Role.ADMIN)
    @blp.response(204)
    @blp.alt_response(404, description="No such product.")
    @admin_docs
    def delete(self, product_id):
        """Soft-delete a product (admin)."""
        service.delete_product(product_id)


@blp.route("/<dbint:product_id>/stock")
class ProductStock(MethodView):
    @auth_required(Role.ADMIN)
    @blp.arguments(StockDeltaSchema)
    @blp.response(200, ProductSchema)
    @blp.alt_response(404, description="No such product.")
    @blp.alt_response(409, description="The stock would go below zero.")
    @admin_docs
    def patch(self, data, product_id):
        """Add a signed delta to the stock, atomically (admin)."""
        return service.adjust_stock(product_id, data["delta"])
