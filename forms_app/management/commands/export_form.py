from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions.management import cli
from forms_app.models import FormDefinition
from forms_app.services import form_export_json


class Command(cli.HeptoraCommand):
    help = "Write a form definition (settings, fields, who may use it) as JSON, for import_form elsewhere."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the form's slug, e.g. order-processing")
        parser.add_argument("--output", "-o", help="write to this file instead of standard output")

    def handle(self, *args: Any, **options: Any) -> None:
        form = FormDefinition.objects.select_related("process").filter(slug=options["slug"]).first()
        if form is None:
            known = ", ".join(FormDefinition.objects.order_by("slug").values_list("slug", flat=True)) or "none"
            raise CommandError(f"There is no form '{options['slug']}'. Forms: {known}.")
        text = form_export_json(form)
        if not options["output"]:
            self.stdout.write(text, ending="")
            return
        try:
            Path(options["output"]).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot write {options['output']}: {exc.strerror}.") from None
        self.stdout.write(f"Wrote the form {form.slug} to {options['output']}.")
