import api_app.admin_api_keys  # noqa: F401
from api_app import admin_jwt  # noqa: F401
