from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management.base import CommandError, CommandParser
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from executions.management import cli
from webhooks import services
from webhooks.models import Delivery, WebhookEndpoint

AGO = re.compile(r"^(\d+)\s*([mhd])$")
UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_since(text: str) -> datetime:
    """"2024-11-03T10:30:00Z", "2024-11-03", or an age: "30m", "6h", "2d"."""
    match = AGO.match(text.strip())
    if match:
        return timezone.now() - timedelta(**{UNITS[match[2]]: int(match[1])})
    try:
        moment = parse_datetime(text) or (parse_datetime(f"{text}T00:00:00") if len(text) == 10 else None)
    except ValueError:
        moment = None
    if moment is None:
        raise CommandError(f"--since {text!r}: use an ISO 8601 date-time (2024-11-03T10:30:00Z), a date or an age "
                           "like 30m, 6h, 2d.")
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(cli.HeptoraCommand):
    help = ("Send webhook deliveries again, with the same event id and webhook-id (receivers dedupe on it). "
            "Only the latest delivery of each event is sent, never one still pending.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("delivery_ids", nargs="*", help="dlv_… ids (optional when filters are given)")
        parser.add_argument("--failed", action="store_true", help="only deliveries that failed")
        parser.add_argument("--since", help="created at or after: ISO 8601, a date, or an age (30m, 6h, 2d)")
        parser.add_argument("--endpoint", help="only this webhook's deliveries (wh_… id)")
        parser.add_argument("--dry-run", action="store_true", help="list what would be sent, send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        ids: list[str] = options["delivery_ids"]
        if not (ids or options["failed"] or options["since"] or options["endpoint"]):
            raise CommandError("Say what to redeliver: delivery ids, or --failed / --since / --endpoint.")
        endpoint = None
        if options["endpoint"]:
            endpoint = WebhookEndpoint.objects.filter(public_id=options["endpoint"]).first()
            if endpoint is None:
                raise CommandError(f"There is no webhook '{options['endpoint']}'.")
        since = parse_since(options["since"]) if options["since"] else None
        if ids:
            deliveries = list(Delivery.objects.filter(public_id__in=ids).select_related("endpoint", "callback"))
            missing = sorted(set(ids) - {d.public_id for d in deliveries})
            if missing:
                raise CommandError(f"No such deliveries: {', '.join(missing)}.")
        else:
            deliveries = list(services.deliveries_for_redelivery(failed_only=options["failed"], since=since,
                                                                 endpoint=endpoint))
        if options["dry_run"]:
            for delivery in deliveries:
                self.stdout.write(f"{delivery.public_id}  {delivery.event_type}  {delivery.event_id}  {delivery.url}")
            self.stdout.write(f"{len(deliveries)} deliveries would be sent again.")
            return
        errors = 0
        for delivery in deliveries:
            try:
                again = services.delivery_redeliver(delivery=delivery)
            except services.WebhookError as exc:
                errors += 1
                self.stderr.write(f"{delivery.public_id}: {exc.message}")
                continue
            self.stdout.write(f"{delivery.public_id} → {again.public_id}  {again.event_type}  {again.event_id}")
        self.stdout.write(f"{len(deliveries) - errors} deliveries queued again.")
        if errors:
            raise CommandError(f"{errors} could not be redelivered (see above).", returncode=cli.EXIT_FAILED)
