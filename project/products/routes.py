"""Products: the public catalogue (cached reads) and its admin writes and sync."""

from flask.views import MethodView

from project.caching import cached_route
from project.guard import Role, auth_required
from project.openapi import Blueprint
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
NO_PRODUCT = (404, "No such product (or it was deleted).")
SKU_TAKEN = (409, "SKU already taken.")


@blp.route("")
class Products(MethodView):
    @blp.doc(operationId="listProducts")
    @cached_route(service.NAMESPACE, "list", "PRODUCTS_CACHE_TTL", query=ProductListArgs)
    @blp.arguments(ProductListArgs, location="query")
    @blp.cacheable_response(page_of(ProductSchema, capped=True))
    def get(self, args):
        """List products: filters, sort and pagination (cached)."""
        return service.list_products(**args)

    @blp.doc(operationId="createProduct")
    @auth_required(Role.ADMIN)
    @blp.arguments(ProductInSchema)
    @blp.response(201, ProductSchema)
    @blp.errors(SKU_TAKEN)
    def post(self, data):
        """Create a product (admin)."""
        return service.create_product(data)


@blp.route("/search")
class ProductSearch(MethodView):
    @blp.doc(operationId="searchProducts")
    @cached_route(service.NAMESPACE, "search", "PRODUCTS_CACHE_TTL", query=ProductSearchArgs)
    @blp.arguments(ProductSearchArgs, location="query")
    @blp.cacheable_response(page_of(ProductSchema, capped=True))
    def get(self, args):
        """Search products by name, description and category (cached)."""
        return service.search_products(**args)


@blp.route("/sync")
class ProductSync(MethodView):
    @blp.doc(operationId="syncProducts")
    @auth_required(Role.ADMIN)
    @blp.response(202, SyncJobSchema)
    @blp.errors((503, "The job queue is down."))
    def post(self):
        """Pull the upstream catalogue now (admin); answers the job id."""
        return sync.start_sync()


@blp.route("/sync/status")
class ProductSyncStatus(MethodView):
    @blp.doc(operationId="getSyncStatus")
    @auth_required(Role.ADMIN)
    @blp.response(200, SyncStatusSchema)
    def get(self):
        """The last sync run (admin)."""
        return sync.sync_status()


@blp.route("/<dbint:product_id>")
class ProductItem(MethodView):
    @blp.doc(operationId="getProduct")
    @cached_route(service.NAMESPACE, "detail", "PRODUCTS_CACHE_TTL")
    @blp.cacheable_response(ProductSchema)
    @blp.errors(NO_PRODUCT)
    def get(self, product_id):
        """One product (cached); a deleted product is 404."""
        return service.get_product(product_id)

    @blp.doc(operationId="replaceProduct")
    @auth_required(Role.ADMIN)
    @blp.arguments(ProductInSchema)
    @blp.response(200, ProductSchema)
    @blp.errors(NO_PRODUCT, SKU_TAKEN)
    def put(self, data, product_id):
        """Replace a product (admin); omitted optional fields take their defaults."""
        return service.update_product(product_id, data)

    @blp.doc(operationId="updateProduct")
    @auth_required(Role.ADMIN)
    @blp.arguments(ProductPatchSchema)
    @blp.response(200, ProductSchema)
    @blp.errors(NO_PRODUCT, SKU_TAKEN)
    def patch(self, data, product_id):
        """Update some fields of a product (admin)."""
        return service.update_product(product_id, data)

    @blp.doc(operationId="deleteProduct")
    @auth_required(Role.ADMIN)
    @blp.response(204)
    @blp.errors(NO_PRODUCT)
    def delete(self, product_id):
        """Soft-delete a product (admin)."""
        service.delete_product(product_id)


@blp.route("/<dbint:product_id>/stock")
class ProductStock(MethodView):
    @blp.doc(operationId="adjustStock")
    @auth_required(Role.ADMIN)
    @blp.arguments(StockDeltaSchema)
    @blp.response(200, ProductSchema)
    @blp.errors(NO_PRODUCT, (409, "The stock would go below zero (or above the maximum)."))
    def patch(self, data, product_id):
        """Add a signed delta to the stock, atomically (admin)."""
        return service.adjust_stock(product_id, data["delta"])
