from flask_smorest import Blueprint

blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="User accounts and roles.")
