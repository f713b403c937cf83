"""Admin for web forms: the form builder (fields ordered by drag and drop), who may use a form, a preview,
JSON export/import; and staff profiles on the user page. Thin: the work is done by forms_app.services."""

from __future__ import annotations

import json
from typing import Any

from adminsortable2.admin import CustomInlineFormSet, SortableAdminBase, SortableStackedInline
from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from forms_app import services
from forms_app.models import FieldType, FormDefinition, FormField, StaffProfile

User = get_user_model()


# --- The fields of a form -------------------------------------------------------------------------------


class FormFieldFormSet(CustomInlineFormSet):
    """Tells each field the names of the fields submitted beside it, so that "show if" may point at a field
    added in the same save, and refuses two fields with one name."""

    def _construct_form(self, i: int, **kwargs: Any) -> forms.Form:
        form = super()._construct_form(i, **kwargs)
        if self.is_bound:
            form.instance.sibling_names = self._submitted_names()
        return form

    def _submitted_names(self) -> list[str]:
        try:
            total = min(int(self.data.get(f"{self.prefix}-TOTAL_FORMS", 0)), self.absolute_max)
        except (TypeError, ValueError):
            return []
        names = []
        for i in range(total):
            if self.data.get(f"{self.prefix}-{i}-DELETE"):
                continue
            name = (self.data.get(f"{self.prefix}-{i}-name") or "").strip()
            if name:
                names.append(name)
        return names

    def clean(self) -> None:
        super().clean()
        names = self._submitted_names()
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValidationError(f"Two fields are named {', '.join(duplicates)}; each field needs its own name.")


class FormFieldInline(SortableStackedInline):
    model = FormField
    formset = FormFieldFormSet
    extra = 0
    fieldsets = [
        (None, {"fields": [("name", "label", "type"), ("required", "web_required", "on_web_form"),
                           ("help_text", "placeholder"), "position"]}),  # position: hidden, set by dragging
        ("Rules", {"classes": ["collapse"], "fields": [
            ("min_length", "max_length"), ("regex", "regex_message"), ("min_value", "max_value"),
            ("decimal_places", "prefix"), "choices", "rules", ("allowed_formats", "max_file_size_mb")]}),
        ("Defaults and conditions", {"classes": ["collapse"], "fields": [
            ("default", "default_current_month", "profile_default"), ("show_if_field", "show_if_value")]}),
    ]


# --- The form -------------------------------------------------------------------------------------------


class FormDefinitionAdminForm(forms.ModelForm):
    allowed_groups = forms.ModelMultipleChoiceField(
        Group.objects.order_by("name"), required=False, label="Roles (groups) that may use it",
        widget=FilteredSelectMultiple("roles", is_stacked=False),
        help_text='Used when access is "Only the chosen roles and users".',
    )
    allowed_users = forms.ModelMultipleChoiceField(
        User.objects.filter(is_active=True).order_by("username"), required=False, label="Users who may use it",
        widget=FilteredSelectMultiple("users", is_stacked=False),
        help_text='Used when access is "Only the chosen roles and users".',
    )

    class Meta:
        model = FormDefinition
        fields = ["process", "title", "slug", "description", "success_message", "confirmation_email", "is_active",
                  "access", "requires_approval"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            users, groups = services.form_access_holders(self.instance)
            self.fields["allowed_users"].initial = users
            self.fields["allowed_groups"].initial = groups


class ImportForm(forms.Form):
    file = forms.FileField(label="Form definition (JSON)", help_text="A file made by Export JSON.")
    replace = forms.BooleanField(required=False, label="Replace the form with the same slug if there is one")


@admin.register(FormDefinition)
class FormDefinitionAdmin(SortableAdminBase, admin.ModelAdmin):
    form = FormDefinitionAdminForm
    inlines = [FormFieldInline]
    list_display = ("title", "slug", "process", "access", "requires_approval", "is_active", "tools")
    list_filter = ("access", "is_active", "requires_approval")
    search_fields = ("title", "slug", "process__slug")
    prepopulated_fields = {"slug": ("title",)}
    readonly_fields = ("created_at", "updated_at")
    actions = ["export_json"]
    fieldsets = [
        (None, {"fields": ["process", "title", "slug", "description", "success_message", "confirmation_email",
                           "is_active"]}),
        ("Who may use it", {"fields": ["access", "allowed_groups", "allowed_users", "requires_approval"]}),
        (None, {"fields": ["created_at", "updated_at"]}),
    ]

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path("<int:pk>/preview/", view(self.preview_view), name="forms_app_formdefinition_preview"),
            path("<int:pk>/export/", view(self.export_view), name="forms_app_formdefinition_export"),
            path("import/", view(self.import_view), name="forms_app_formdefinition_import"),
            *super().get_urls(),
        ]

    @admin.display(description="")
    def tools(self, obj: FormDefinition) -> str:
        return format_html(
            '<a class="button" href="{}">Preview</a> <a class="button" href="{}">Export JSON</a>',
            reverse("admin:forms_app_formdefinition_preview", args=[obj.pk]),
            reverse("admin:forms_app_formdefinition_export", args=[obj.pk]),
        )

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        super().save_related(request, form, formsets, change)
        services.form_grant_access(form.instance, users=form.cleaned_data["allowed_users"],
                                   groups=form.cleaned_data["allowed_groups"])

    # --- Preview ---

    def preview_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        form = get_object_or_404(FormDefinition.objects.select_related("process"), pk=pk)
        if not self.has_view_permission(request, form):
            raise PermissionDenied
        initial = services.form_initial(form, request.user)
        rows = [_preview_row(spec, initial.get(spec["name"])) for spec in services.form_web_fields(form)]
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": form,
                   "title": f"Preview: {form.title}", "form_definition": form, "rows": rows}
        return TemplateResponse(request, "admin/forms_app/formdefinition/preview.html", context)

    # --- Export and import ---

    def export_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        form = get_object_or_404(FormDefinition.objects.select_related("process"), pk=pk)
        if not self.has_view_permission(request, form):
            raise PermissionDenied
        return _download(form)

    @admin.action(description="Export JSON (one form)")
    def export_json(self, request: HttpRequest, queryset: QuerySet[FormDefinition]) -> HttpResponse | None:
        if queryset.count() != 1:
            self.message_user(request, "Choose exactly one form to export.", messages.WARNING)
            return None
        return _download(queryset.select_related("process").get())

    def import_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        upload = ImportForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and upload.is_valid():
            try:
                data = json.loads(upload.cleaned_data["file"].read().decode("utf-8"))
                imported = services.form_import(data, replace=upload.cleaned_data["replace"])
            except UnicodeDecodeError:
                upload.add_error("file", "The file is not UTF-8 text.")
            except json.JSONDecodeError as exc:
                upload.add_error("file", f"The file is not valid JSON: {exc.msg} (line {exc.lineno}).")
            except ValueError as exc:
                upload.add_error("file", str(exc))
            else:
                self.message_user(request, f"Imported the form “{imported.title}”.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:forms_app_formdefinition_change", args=[imported.pk]))
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "title": "Import a form",
                   "upload": upload}
        return TemplateResponse(request, "admin/forms_app/formdefinition/import.html", context)


def _download(form: FormDefinition) -> HttpResponse:
    response = HttpResponse(services.form_export_json(form), content_type="application/json")
    response["Content-Disposition"] = f'attachment; filename="form-{form.slug}.json"'
    return response


_PREVIEW_WIDGETS: dict[str, Any] = {
    FieldType.TEXTAREA: lambda: forms.Textarea(attrs={"rows": 3}),
    FieldType.EMAIL: forms.EmailInput,
    FieldType.PHONE: lambda: forms.TextInput(attrs={"type": "tel"}),
    FieldType.NUMBER: forms.NumberInput,
    FieldType.DATE: lambda: forms.DateInput(attrs={"type": "date"}),
    FieldType.MONTH: lambda: forms.TextInput(attrs={"type": "month"}),
    FieldType.DATETIME: lambda: forms.DateTimeInput(attrs={"type": "datetime-local"}),
    FieldType.CHECKBOX: forms.CheckboxInput,
    FieldType.FILE: forms.FileInput,
}


def _preview_row(spec: dict[str, Any], value: Any) -> dict[str, Any]:
    """One field as the staff member sees it, disabled: the admin preview never sends anything."""
    kind = spec.get("type", "text")
    if kind == FieldType.DROPDOWN:
        widget: forms.Widget = forms.Select(choices=[("", "—"), *((c, c) for c in spec["choices"])])
    else:
        widget = _PREVIEW_WIDGETS.get(kind, forms.TextInput)()
    attrs = {"disabled": True, "id": f"preview-{spec['name']}"}
    if spec.get("placeholder"):
        attrs["placeholder"] = spec["placeholder"]
    if spec.get("max_length") and kind in (FieldType.TEXT, FieldType.TEXTAREA):
        attrs["maxlength"] = spec["max_length"]
    if kind == FieldType.NUMBER and spec.get("decimal_places") is not None:
        attrs["step"] = 10 ** -spec["decimal_places"] if spec["decimal_places"] else 1
    notes = []
    if spec.get("show_if"):
        notes.append("Shown only when " + ", ".join(f"{k} is {v}" for k, v in spec["show_if"].items()) + ".")
    if spec.get("allowed_formats"):
        notes.append(f"Allowed formats: {', '.join(spec['allowed_formats'])}.")
    if spec.get("max_length") and kind == FieldType.TEXTAREA:
        notes.append(f"At most {spec['max_length']} characters.")
    return {"spec": spec, "widget": widget.render(spec["name"], value, attrs=attrs), "notes": notes,
            "id": attrs["id"]}


# --- Staff profiles on the user page --------------------------------------------------------------------


class StaffProfileInline(admin.StackedInline):
    model = StaffProfile
    can_delete = False
    verbose_name = "staff profile"
    verbose_name_plural = "Staff profile (what forms fill in for this person)"
    fields = ("department", "phone")


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class HeptoraUserAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, StaffProfileInline]
