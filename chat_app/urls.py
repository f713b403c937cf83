from django.urls import path

from chat_app import views

app_name = "chat"

urlpatterns = [
    path("", views.chat_page, name="page"),
    path("widget.js", views.widget_js, name="widget-js"),
    path("link/", views.link_page, name="link"),
]
