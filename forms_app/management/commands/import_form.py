from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions.management import cli
from forms_app.services import form_import


class Command(cli.HeptoraCommand):
    help = "Create a form from a JSON definition made by export_form (nothing is written if it has an error)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("file", help="the JSON file")
        parser.add_argument("--replace", action="store_true", help="overwrite the form with the same slug")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            text = Path(options["file"]).read_text(encoding="utf-8")
        except OSError as exc:
            raise CommandError(f"Cannot read {options['file']}: {exc.strerror}.") from None
        except UnicodeDecodeError:
            raise CommandError(f"{options['file']} is not UTF-8 text.") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise CommandError(f"{options['file']} is not valid JSON: {exc.msg} (line {exc.lineno}).") from None
        try:
            form = form_import(data, replace=options["replace"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Imported the form {form.slug} ({form.fields.count()} fields) for the process "
                          f"{form.process.slug}.")
