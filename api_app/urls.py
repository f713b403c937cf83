from django.urls import path

from api_app.views import account

app_name = "api"

urlpatterns = [
    path("me", account.MeView.as_view(), name="me"),
]
