import api_app.admin_api_keys
import api_app.admin_calls  # noqa: F401
from api_app import admin_jwt  # noqa: F401
