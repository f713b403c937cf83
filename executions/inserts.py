"""One SQL statement for a new execution and its first event (PostgreSQL).

Every start writes two rows that must exist together. As two INSERTs in a transaction that is four round
trips to PostgreSQL (BEGIN, INSERT, INSERT, COMMIT) on the path from a click or an API call to a worker.
A data-modifying CTE writes both in one atomic statement, so when nothing else has to join the transaction
(no lifecycle subscriber writes rows for the event) a start is one round trip. The SQL of each INSERT is
Django's own (its compiler, with the models' defaults and adapters); only the glue is written here.
"""

from __future__ import annotations

from django.db import connection
from django.db.models import Model
from django.db.models.sql.subqueries import InsertQuery

from executions.models import Execution, ExecutionEvent


def supported() -> bool:
    return connection.vendor == "postgresql"


def _insert_sql(obj: Model, *, exclude: tuple[str, ...] = ()) -> tuple[str, list[str], tuple[object, ...]]:
    """The INSERT Django would run for ``obj`` (without its primary key and the ``exclude`` columns)."""
    opts = obj._meta
    fields = [f for f in opts.local_concrete_fields if not f.primary_key and f.attname not in exclude]
    query = InsertQuery(type(obj))
    query.insert_values(fields, [obj])
    [(sql, params)] = query.get_compiler(connection=connection).as_sql()
    return sql, [f.column for f in fields], tuple(params)


def execution_and_event_insert(execution: Execution, event: ExecutionEvent) -> None:
    """INSERT ``execution`` and ``event`` (which belongs to it) in one statement; sets both primary keys."""
    execution_sql, _, execution_params = _insert_sql(execution)
    event_sql, event_columns, event_params = _insert_sql(event, exclude=("execution_id",))
    # "INSERT INTO t (cols) VALUES (…)" -> "INSERT INTO t (execution_id, cols) SELECT id, … FROM new"
    head, values = event_sql.split(" VALUES ", 1)
    table = ExecutionEvent._meta.db_table
    quote = connection.ops.quote_name
    columns = ", ".join([quote("execution_id"), *(quote(c) for c in event_columns)])
    sql = (
        f"WITH new AS ({execution_sql} RETURNING {quote(Execution._meta.pk.column)}) "
        f"INSERT INTO {quote(table)} ({columns}) SELECT new.{quote(Execution._meta.pk.column)}, "
        f"{values.strip()[1:-1]} FROM new RETURNING {quote('id')}, {quote('execution_id')}"
    )
    if not head.startswith(f"INSERT INTO {quote(table)}"):  # the shape this relies on
        raise RuntimeError(f"Unexpected INSERT from Django's compiler: {event_sql[:80]}")
    with connection.cursor() as cursor:
        cursor.execute(sql, execution_params + event_params)
        event.pk, execution.pk = cursor.fetchone()
    event.execution = execution
    for obj in (execution, event):
        obj._state.adding = False
        obj._state.db = connection.alias
