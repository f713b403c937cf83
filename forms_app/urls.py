"""The web forms' pages: /forms/ and /runs/ (sign-in pages are mounted at /accounts/ in heptora/urls.py)."""

from django.urls import path

from forms_app import views

app_name = "forms_app"

urlpatterns = [
    path("forms/", views.form_list, name="list"),
    path("forms/<slug:slug>/", views.form_page, name="form"),
    path("runs/", views.my_runs, name="my_runs"),
    path("runs/<str:execution_id>/", views.run_page, name="run"),
    path("runs/<str:execution_id>/status.json", views.run_status, name="run_status"),
    path("runs/<str:execution_id>/retry/", views.run_retry, name="run_retry"),
]
