"""A process's parameter definition: ONE set of field rules for the browser form, the API, chat and the CLI.

A definition is a list of field dicts (today the process's code declaration; form definitions edited in
admin build on the same shape). Keys:

``name`` (camelCase, the JSON key), ``label``, ``type`` (text, email, phone, number, date, datetime, month, dropdown,
checkbox, textarea, file, object, list), ``required``, ``default``, ``help``, ``placeholder``,
``choices`` (dropdown; matched case-insensitively, stored in their canonical spelling), ``min_length``,
``max_length``, ``regex`` + ``regex_message``, ``min`` / ``max`` / ``decimal_places`` / ``prefix`` (number),
``show_if`` (``{"otherField": value}``: the field exists only while the other field has that value; a
hidden field is neither required nor kept), ``rules`` (names of custom rules, see :func:`rule`).

Keys a form definition adds (see ``FormField.as_spec``): ``allowed_formats`` and ``max_file_size`` (bytes)
for files, ``web_required`` (required when a person fills the web form; other doors may leave it out),
``on_web_form`` (False: only integrators send it), and the web form's initial values
``default_current_month`` and ``profile_default`` (name, email, department). Unlike ``default``, those two
are only pre-filled in the browser; they never fill in a value an API caller left out.

:func:`fields_for` is on every start's path: each web and worker process keeps a local copy of every
process's field dicts and of the Django fields that check them (no query, no unpickling in the steady
state), renewed everywhere whenever a form or one of its fields changes (:mod:`heptora.local_cache`).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from executions import registry
from executions.errors import InvalidParameters
from executions.models import Process
from forms_app import uploads
from heptora.local_cache import DEFINITIONS

FieldSpec = Mapping[str, Any]
PHONE_RE = r"^\+?[0-9][0-9 ().-]{5,19}$"
_rules: dict[str, Callable[[Any], None]] = {}


def rule(name: str) -> Callable[[Callable[[Any], None]], Callable[[Any], None]]:
    """Register a custom validation rule usable by name in a field's ``rules`` (raise ValidationError)."""

    def decorator(func: Callable[[Any], None]) -> Callable[[Any], None]:
        _rules[name] = func
        return func

    return decorator


def registered_rules() -> frozenset[str]:
    return frozenset(_rules)


class CaseInsensitiveChoiceField(forms.ChoiceField):
    """Accepts "high" for "High" (the product's API example sends lower case) and stores "High"."""

    def to_python(self, value: Any) -> str:
        value = super().to_python(value)
        for choice, _label in self.choices:
            if str(choice).lower() == value.strip().lower():
                return str(choice)
        return value


class YesNoField(forms.BooleanField):
    """A checkbox that also understands what people type in chat or a shell: yes/no, on/off, true/false."""

    TRUE_WORDS = frozenset({"true", "1", "yes", "y", "on"})
    FALSE_WORDS = frozenset({"false", "0", "no", "n", "off", ""})

    def to_python(self, value: Any) -> bool:
        if isinstance(value, bool) or value is None:
            return bool(value)
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        word = value.strip().lower() if isinstance(value, str) else None
        if word in self.TRUE_WORDS:
            return True
        if word in self.FALSE_WORDS:
            return False
        raise ValidationError("Answer yes or no (true or false).", code="invalid")


class IsoDateTimeField(forms.DateTimeField):
    """An ISO 8601 date-time ("2024-11-03T10:30:00Z", offsets allowed); stored in UTC."""

    def to_python(self, value: Any) -> dt.datetime | None:
        if value in self.empty_values:
            return None
        if isinstance(value, dt.datetime):
            parsed: dt.datetime | None = value
        else:
            try:
                parsed = parse_datetime(str(value).strip())
            except (ValueError, OverflowError):
                parsed = None
        if parsed is None:
            raise ValidationError("Enter an ISO 8601 date-time, for example 2024-11-03T10:30:00Z.", code="invalid")
        if parsed.tzinfo is None:
            parsed = timezone.make_aware(parsed, dt.UTC)
        try:
            return parsed.astimezone(dt.UTC)
        except OverflowError:
            raise ValidationError("That date-time is out of range.", code="invalid") from None


class MonthField(forms.CharField):
    """A month as "YYYY-MM" (a full date is accepted and reduced to its month)."""

    def to_python(self, value: Any) -> str:
        if isinstance(value, (dt.date, dt.datetime)):
            return value.strftime("%Y-%m")
        value = super().to_python(value)
        if value in self.empty_values:
            return value
        match = re.fullmatch(r"(\d{4})-(\d{2})(?:-\d{2})?", value.strip())
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise ValidationError("Enter a month as YYYY-MM, for example 2024-11.", code="invalid")
        return f"{match.group(1)}-{match.group(2)}"


class ObjectField(forms.JSONField):
    def __init__(self, *, expected: type, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.expected = expected

    MAX_DEPTH = 16
    MAX_CHARS = 64 * 1024

    def to_python(self, value: Any) -> Any:
        try:
            value = super().to_python(value)
        except RecursionError:
            raise ValidationError(f"Nested too deeply (at most {self.MAX_DEPTH} levels).", code="too_deep") from None
        if value is not None and not isinstance(value, self.expected):
            kind = "an object" if self.expected is dict else "a list"
            raise ValidationError(f"Enter {kind}.", code="invalid")
        if value is not None:
            if _nesting(value) > self.MAX_DEPTH:
                raise ValidationError(f"Nested too deeply (at most {self.MAX_DEPTH} levels).", code="too_deep")
            if len(json.dumps(value, default=str)) > self.MAX_CHARS:
                raise ValidationError(f"Too large (at most {self.MAX_CHARS // 1024} KB as JSON).", code="too_large")
        return value


def _nesting(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


class FileReferenceField(forms.Field):
    """A file handed to the process: an https URL, ``{"name", "contentBase64"}`` / ``{"url"}``, or a reference
    to a file uploaded through a web form (``{"path", …}``; see :mod:`forms_app.uploads`)."""

    def __init__(self, *, allowed_formats: list[str] | None = None, max_file_size: int | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.allowed_formats = list(allowed_formats or [])
        self.max_file_size = max_file_size

    def to_python(self, value: Any) -> Any:
        if value in self.empty_values:
            return None
        if isinstance(value, str) and re.match(r"^https?://\S+$", value):
            return {"url": value}
        if isinstance(value, dict) and isinstance(value.get("url"), str) and re.match(r"^https?://\S+$", value["url"]):
            return {"url": value["url"], **({"name": value["name"]} if isinstance(value.get("name"), str) else {})}
        if isinstance(value, dict) and "path" in value:
            return uploads.stored_reference(value, allowed_formats=self.allowed_formats,
                                            max_bytes=self.max_file_size)
        if isinstance(value, dict) and isinstance(value.get("contentBase64"), str):
            try:
                content = base64.b64decode(value["contentBase64"], validate=True)
            except (binascii.Error, ValueError):
                raise ValidationError("contentBase64 is not valid base64.", code="invalid") from None
            limit = settings.HEPTORA_MAX_INLINE_FILE_BYTES
            if len(content) > limit:
                raise ValidationError(f"The file is larger than {limit // 1024} KB; send an https URL instead.",
                                      code="too_large")
            if self.allowed_formats:
                name = value["name"] if isinstance(value.get("name"), str) else ""
                uploads.check(io.BytesIO(content), name=name, size=len(content),
                              allowed_formats=self.allowed_formats, max_bytes=self.max_file_size)
            return value
        raise ValidationError("Give a file as an https URL or as {\"name\", \"contentBase64\"}.", code="invalid")


# --- The definition of a process: its form's fields, else its code declaration -------------------------

def fields_for(process: Process) -> list[FieldSpec]:
    """The process's parameter definition: its form's fields when it has a form with fields, else the
    definition declared in code. Read from this process's local copy: no query and no cache read of its own
    in the steady state (see :mod:`heptora.local_cache`). The field dicts are shared: do not change them."""
    specs = DEFINITIONS.get(("fields", process.slug), lambda: _form_specs(process)) if process.pk is not None else []
    if specs:
        return list(specs)
    definition = registry.get(process.slug)
    return list(definition.parameters) if definition else []


def _form_specs(process: Process) -> list[FieldSpec]:
    from forms_app.models import FormField

    fields = FormField.objects.filter(form__process__slug=process.slug).order_by("position", "pk")
    return [field.as_spec() for field in fields]


def fields_cache_clear() -> None:
    """Make every web and worker process read the definitions again (forms change rarely, so all of them)."""
    DEFINITIONS.changed()


def _checking_field(process: Process, spec: FieldSpec, required: bool) -> forms.Field:
    """The Django field that checks ``spec``'s values, built once per definition: ``clean`` keeps no state, so
    one instance serves every thread. (Building the fields was a tenth of every start's time.)"""
    key = ("field", process.slug, spec["name"], required)
    return DEFINITIONS.get(key, lambda: _django_field({**spec, "required": required}))


def spec_field(spec: FieldSpec) -> forms.Field:
    """The Django form field that checks one field dict's value (also used to check a form's defaults)."""
    return _django_field(spec)


def _django_field(spec: FieldSpec) -> forms.Field:
    kind = spec.get("type", "text")
    common: dict[str, Any] = {
        "required": bool(spec.get("required", False)),
        "label": spec.get("label", spec["name"]),
        "help_text": spec.get("help", ""),
    }
    validators: list[Callable[[Any], None]] = [
        _rules.get(name) or _missing_rule(name) for name in spec.get("rules", ())
    ]
    if kind in ("text", "textarea"):
        if spec.get("regex"):
            validators.append(RegexValidator(spec["regex"], spec.get("regex_message") or "Enter a valid value."))
        field: forms.Field = forms.CharField(
            min_length=spec.get("min_length"), max_length=spec.get("max_length"),
            widget=forms.Textarea if kind == "textarea" else None, **common,
        )
    elif kind == "email":
        field = forms.EmailField(**common)
    elif kind == "phone":
        field = forms.CharField(**common)
        validators.append(RegexValidator(PHONE_RE, "Enter a phone number, for example +1 555 0100."))
    elif kind == "number":
        field = forms.DecimalField(
            min_value=spec.get("min"), max_value=spec.get("max"), decimal_places=spec.get("decimal_places"), **common
        )
    elif kind == "date":
        field = forms.DateField(input_formats=["%Y-%m-%d"], **common)
    elif kind == "datetime":
        field = IsoDateTimeField(**common)
    elif kind == "month":
        field = MonthField(**common)
    elif kind == "dropdown":
        choices = [(c, c) for c in spec["choices"]]
        field = CaseInsensitiveChoiceField(choices=choices, **common)
    elif kind == "checkbox":
        field = YesNoField(**{**common, "required": False})
    elif kind == "file":
        field = FileReferenceField(allowed_formats=spec.get("allowed_formats"),
                                   max_file_size=spec.get("max_file_size"), **common)
    elif kind in ("object", "list"):
        field = ObjectField(expected=dict if kind == "object" else list, **common)
    else:
        raise ValueError(f"Unknown field type {kind!r} for {spec['name']!r}")
    field.validators.extend(validators)
    return field


def required_for(spec: FieldSpec, source: str) -> bool:
    """Required through this door? ``web_required`` fields are required on the web form only."""
    return bool(spec.get("required")) or (source == "form" and bool(spec.get("web_required")))


def visible_names(specs: list[FieldSpec], values: Mapping[str, Any]) -> set[str]:
    """The fields shown for ``values`` (raw, as a browser sends them), judged as :meth:`clean` does."""
    cleaned: dict[str, Any] = {}
    shown = set()
    for spec in specs:
        if not _visible(spec, cleaned):
            continue
        shown.add(spec["name"])
        if spec.get("type") == "file":
            continue
        try:
            value = _django_field({**spec, "required": False}).clean(values.get(spec["name"]))
        except ValidationError:
            continue
        if value not in (None, ""):
            cleaned[spec["name"]] = _storable(value)
    return shown


def _missing_rule(name: str) -> Callable[[Any], None]:
    """A rule named by a form but no longer registered in code fails closed, with a message saying so."""

    def refuse(value: Any) -> None:
        raise ValidationError(f"This field's rule {name!r} is not available; ask an administrator to fix the form.",
                              code="missing_rule")

    return refuse


def _visible(spec: FieldSpec, values: Mapping[str, Any]) -> bool:
    condition = spec.get("show_if")
    if not condition:
        return True
    for other, expected in condition.items():
        actual = values.get(other)
        if isinstance(expected, str) and isinstance(actual, str):
            if actual.lower() != expected.lower():
                return False
        elif actual != expected:
            return False
    return True


def _storable(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() and value.as_tuple().exponent >= 0 else float(value)
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return value


# What JSON value each field type takes (before its own rules run). Strings are accepted for numbers,
# booleans and objects too, because forms, the CLI and chat send text.
_ACCEPTED_TYPES: dict[str, tuple[type, ...]] = {
    "number": (int, float, str),
    "checkbox": (bool, int, str),
    "file": (object,),  # FileReferenceField explains the accepted forms itself
    "object": (dict, str),
    "list": (list, str),
}
_TYPE_WORDS = {
    "number": "a number", "checkbox": "true or false", "file": "a file reference", "object": "an object",
    "list": "a list", "date": "a date as YYYY-MM-DD", "month": "a month as YYYY-MM",
    "datetime": "an ISO 8601 date-time", "dropdown": "one of the choices", "email": "an e-mail address",
    "phone": "a phone number",
}


def _type_problem(kind: str, raw: Any) -> str | None:
    if raw is None:
        return None  # "required" is the field's own rule
    accepted = _ACCEPTED_TYPES.get(kind, (str,))
    if isinstance(raw, bool) and bool not in accepted:
        accepted = ()
    if isinstance(raw, accepted):
        return None
    return f"Enter {_TYPE_WORDS.get(kind, 'text')}, not {_json_type_name(raw)}."


def _json_type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    return "this value"


class ParameterDefinition:
    """The implementation of :class:`executions.hooks.ParameterDefinition` registered by this app."""

    def form_class(self, process: Process) -> type[forms.Form]:
        attrs = {spec["name"]: _django_field(spec) for spec in fields_for(process)}
        return type(f"{process.slug.title().replace('-', '')}ParametersForm", (forms.Form,), attrs)

    def clean(self, process: Process, parameters: dict[str, Any], *, source: str) -> dict[str, Any]:
        specs = fields_for(process)
        known = {spec["name"] for spec in specs}
        errors: dict[str, list[str]] = {
            name: [f"Unknown parameter. Known parameters: {', '.join(sorted(known)) or 'none'}."]
            for name in parameters
            if name not in known
        }
        data = dict(parameters)
        for spec in specs:
            if spec["name"] not in data and "default" in spec:
                data[spec["name"]] = spec["default"]
        # Fields controlled by show_if are judged against the cleaned values of the fields they depend on,
        # so "priority": "high" shows a field that depends on "High".
        cleaned: dict[str, Any] = {}
        for spec in specs:
            name = spec["name"]
            if not _visible(spec, cleaned):
                continue
            required = required_for(spec, source)
            if name not in data and not required:
                continue  # absent and optional: no need to build its field (this runs on every start)
            field = _checking_field(process, spec, required)
            raw = data.get(name)
            if name not in data and not field.required:
                continue
            wrong_type = _type_problem(spec.get("type", "text"), raw)
            if wrong_type:
                errors[name] = [wrong_type]
                continue
            try:
                value = field.clean(raw)
            except ValidationError as exc:
                errors[name] = list(exc.messages)
                continue
            if value in (None, "") and not field.required:
                continue
            cleaned[name] = _storable(value)
        if errors:
            raise InvalidParameters(errors)
        return cleaned


definition = ParameterDefinition()


def parameters_clean(process: Process, parameters: dict[str, Any], *, source: str = "api") -> dict[str, Any]:
    """Validate ``parameters`` against the process's definition (for doors that want a dry run)."""
    return definition.clean(process, parameters, source=source)


def parameter_clean_one(
    process: Process, name: str, raw: Any, known_values: Mapping[str, Any] | None = None
) -> Any:
    """Validate ONE field's value (a chat answer) with the same rules as :func:`parameters_clean`.

    Returns the stored value; raises InvalidParameters({name: [messages]}) for an unknown field, a field that
    ``known_values`` hide (``show_if``), or a value its rules refuse.
    """
    spec = next((s for s in fields_for(process) if s["name"] == name), None)
    if spec is None:
        raise InvalidParameters({name: ["Unknown parameter."]})
    if not _visible(spec, known_values or {}):
        condition = ", ".join(f"{k} is {v}" for k, v in spec["show_if"].items())
        raise InvalidParameters({name: [f"Only used when {condition}."]})
    wrong_type = _type_problem(spec.get("type", "text"), raw)
    if wrong_type:
        raise InvalidParameters({name: [wrong_type]})
    try:
        value = _django_field(spec).clean(raw)
    except ValidationError as exc:
        raise InvalidParameters({name: list(exc.messages)}) from None
    return _storable(value)


_JSON_TYPES = {
    "text": {"type": "string"},
    "textarea": {"type": "string"},
    "email": {"type": "string", "format": "email"},
    "phone": {"type": "string", "pattern": PHONE_RE},
    "number": {"type": "number"},
    "date": {"type": "string", "format": "date"},
    "datetime": {"type": "string", "format": "date-time"},
    "month": {"type": "string", "pattern": r"^\d{4}-\d{2}(-\d{2})?$"},
    "checkbox": {"type": "boolean"},
    "object": {"type": "object"},
    "list": {"type": "array"},
}


def parameters_json_schema(process: Process) -> dict[str, Any]:
    """The process's parameters as JSON Schema, generated from the same definition that validates them.

    Validation on the server is the authority (and is more lenient where people are: "high" for "High",
    "yes" for true); the schema documents what a well-behaved client sends.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for spec in fields_for(process):
        kind = spec.get("type", "text")
        if kind == "dropdown":
            prop: dict[str, Any] = {"type": "string", "enum": list(spec["choices"])}
        elif kind == "file":
            prop = {"oneOf": [
                {"type": "string", "format": "uri", "description": "An https URL the process may fetch."},
                {"type": "object", "required": ["contentBase64"],
                 "properties": {"name": {"type": "string"}, "contentBase64": {"type": "string"}}},
                {"type": "object", "required": ["path"], "description": "A file uploaded through a web form.",
                 "properties": {"name": {"type": "string"}, "path": {"type": "string"}}},
            ]}
        else:
            prop = dict(_JSON_TYPES[kind])
        prop["title"] = spec.get("label", spec["name"])
        if spec.get("help"):
            prop["description"] = spec["help"]
        for ours, theirs in (("min_length", "minLength"), ("max_length", "maxLength"), ("min", "minimum"),
                             ("max", "maximum")):
            if spec.get(ours) is not None:
                prop[theirs] = spec[ours]
        if spec.get("regex"):
            prop["pattern"] = spec["regex"]
        if "default" in spec:
            prop["default"] = spec["default"]
        if spec.get("show_if"):
            condition = ", ".join(f"{k} is {v}" for k, v in spec["show_if"].items())
            prop["description"] = f"{prop.get('description', '')} Only used when {condition}.".strip()
        elif spec.get("required"):
            required.append(spec["name"])
        if spec.get("placeholder"):
            prop["example"] = spec["placeholder"]
        properties[spec["name"]] = prop
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema
